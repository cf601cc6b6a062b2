import fs from 'node:fs';
import path from 'node:path';
import { AuditLog, auditLogPath } from '../audit/log';
import { vaultAuditSink } from '../audit/vaultSink';
import { parseOptions, UsageError, yearOption, type CliCommand } from '../cli/command';
import { loadConfig } from '../config';
import { ReservationRegister } from '../consent/register';
import { loadReservationKey } from '../consent/keys';
import { openIdentity } from '../identity/service';
import { createLogger } from '../logging/logger';
import { openStore } from '../server';
import { readUnits } from '../units/units';
import { computeCoverage, coverageReportPath, type CoverageCounts, type CoverageReport } from './coverage';
import { NprExtractError, readNprExtract } from './nprExtract';

const USAGE = `norpain coverage --npr FILE --year YYYY

Coverage (dekningsgrad) of the registry against an extract from the Norwegian patient register (NPR):
links the extract's contacts to the registry at person level through the identity vault (one audited
read), then prints, per participating unit and nationally, NPR only, registry only, both and
  coverage = (registry only + both) / (NPR only + registry only + both)
and writes the same aggregates to DATA_DIR/reports/coverage-YYYY.json. The extract's national ids are
never written anywhere; rows that cannot be used are counted by reason, with line numbers.
The CSV format and who counts where: docs/npr-extract.md.
  --npr FILE   the NPR extract (CSV, header national_id;resh;contact_date;contact_end;icd10)
  --year YYYY  the year of the contacts and episodes compared`;

export const coverageCommand: CliCommand = {
  name: 'coverage',
  summary: 'coverage of the registry against an NPR extract, per unit and nationally',
  usage: USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, { npr: { type: 'string' }, year: { type: 'string' } });
    if (values.npr === undefined || values.year === undefined) {
      throw new UsageError('--npr FILE and --year YYYY are required');
    }
    const year = yearOption(values.year);
    const config = loadConfig(env);
    const production = config.mode === 'production';
    const logger = createLogger({ level: config.logLevel, sink: (line) => process.stderr.write(line + '\n') });
    let extract;
    try {
      extract = await readNprExtract(values.npr, { production });
    } catch (err) {
      if (err instanceof NprExtractError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
        process.stderr.write(`norpain coverage: the NPR extract cannot be used: ${describe(err)}\n`);
        return 1;
      }
      throw err;
    }
    if (!production && extract.realIdLines.length > 0) {
      // Development and tests use synthetic ids only; real people's ids do not belong on such a setup.
      process.stderr.write(
        `norpain coverage: the extract holds national ids that are not synthetic (lines ${extract.realIdLines.join(', ')}); ` +
          'outside production only synthetic (Test-Norge) ids are processed. Nothing was written.\n',
      );
      return 1;
    }
    const auditLog = AuditLog.open(auditLogPath(config.dataDir));
    const identity = openIdentity({
      env,
      production,
      dataDir: config.dataDir,
      logger,
      // The linkage read is one bulk read recorded with its count: it names no person to look up.
      audit: vaultAuditSink(auditLog, () => undefined),
    });
    const register = ReservationRegister.open({
      file: ReservationRegister.defaultFile(config.dataDir),
      key: loadReservationKey({ env, production, dataDir: config.dataDir }),
    });
    const store = await openStore(config);
    let report: CoverageReport;
    try {
      report = await computeCoverage({
        year,
        contacts: extract.contacts,
        extract,
        units: readUnits(config.unitsFile).map((u) => u.resh),
        store,
        vault: identity.vault,
        register,
        audit: { actor: 'norpain-cli' },
      });
    } finally {
      extract.contacts.length = 0;
      await store.close();
      register.close();
      identity.close();
      auditLog.close();
    }
    const file = coverageReportPath(config.dataDir, year);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(temporary, file);
    process.stdout.write(render(report, extract.malformedLines) + `written to ${file}\n`);
    return 0;
  },
};

function describe(err: unknown): string {
  return err instanceof NprExtractError ? err.message : 'the file does not exist';
}

function render(report: CoverageReport, malformedLines: readonly number[]): string {
  const row = (name: string, c: CoverageCounts) =>
    [
      name.padEnd(10),
      String(c.nprOnly).padStart(9),
      String(c.registryOnly).padStart(14),
      String(c.both).padStart(8),
      (c.coverage === null ? '-' : `${(c.coverage * 100).toFixed(1)} %`).padStart(9),
      String(c.reserved).padStart(9),
    ].join(' ');
  const e = report.extract;
  const lines = [
    `coverage ${report.year} against NPR (${e.rows} rows: ${e.used} used, ${e.malformed} malformed, ` +
      `${e.otherUnits} at other units, ${e.otherYears} in other years)`,
    ...Object.entries(e.malformedReasons).map(([reason, n]) => `  ${n} malformed: ${reason}`),
    ...(malformedLines.length > 0 ? [`  first malformed lines: ${malformedLines.join(', ')}`] : []),
    ['unit'.padEnd(10), 'NPR only', 'registry only', 'both', 'coverage', 'reserved'].join('  '),
    ...Object.entries(report.units).map(([unit, c]) => row(unit, c)),
    row('national', report.national),
  ];
  return lines.join('\n') + '\n';
}
