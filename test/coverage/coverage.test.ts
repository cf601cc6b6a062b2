import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, auditLogPath } from '../../src/audit/log';
import { withCheckDigits } from '../../src/identity';
import { generateCohort, type CohortPerson } from '../generators/cohort';
import { loadCohort } from '../generators/load';
import { norpain } from '../helpers/cli';
import { generateNprExtract, type ExpectedCounts } from '../generators/nprExtract';

const YEAR = 2023;
const COHORT = { persons: 400, seed: 21, fromYear: 2021, toYear: 2024, reservedShare: 0.03 };


/** Every file under dir, as bytes. */
function filesUnder(dir: string): Buffer[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => fs.readFileSync(path.join(e.parentPath, e.name)));
}

const coverage = (c: ExpectedCounts) => {
  const denominator = c.nprOnly + c.registryOnly + c.both;
  return denominator === 0 ? null : Math.round(((c.registryOnly + c.both) / denominator) * 10000) / 10000;
};

describe('norpain coverage', () => {
  let dataDir: string;
  let work: string;
  let persons: CohortPerson[];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-coverage-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-npr-'));
    persons = [...generateCohort(COHORT)];
    await loadCohort(dataDir, COHORT);
  });

  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('gives exactly the figures a known overlap implies, per unit and nationally, and leaks no id', () => {
    const extract = generateNprExtract(persons, {
      year: YEAR,
      seed: 4,
      overlap: {
        '999001': { both: 0.8, nprOnly: 7 },
        '999002': { both: 0.5, nprOnly: 3 },
        '999003': { both: 1, nprOnly: 0 },
        '999004': { both: 0, nprOnly: 5 },
        '999005': { both: 0.9, nprOnly: 2 },
      },
      crossUnit: 4,
      otherUnitRows: 3,
      otherYearRows: 2,
      malformedRows: 6,
    });
    const file = path.join(work, 'npr.csv');
    fs.writeFileSync(file, extract.csv);
    const run = norpain(['coverage', '--npr', file, '--year', String(YEAR)], { DATA_DIR: dataDir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const report = JSON.parse(
      fs.readFileSync(path.join(dataDir, 'reports', `coverage-${YEAR}.json`), 'utf8'),
    ) as {
      units: Record<string, unknown>;
      national: unknown;
      extract: Record<string, unknown>;
    };
    const withCoverage = (c: ExpectedCounts) => ({ ...c, coverage: coverage(c) });
    expect(report.units).toEqual(
      Object.fromEntries(Object.entries(extract.expected.units).map(([u, c]) => [u, withCoverage(c)])),
    );
    expect(report.national).toEqual(withCoverage(extract.expected.national));
    expect(extract.expected.national.reserved).toBeGreaterThan(0);
    expect(report.extract).toMatchObject({ rows: extract.rows, malformed: 6, otherUnits: 3, otherYears: 2 });
    expect(run.stdout).toContain('national');
    expect(run.stdout).toContain(`written to`);

    // The extract's ids reach no output and no file of ours (vault ids are encrypted, audit counts only).
    const files = filesUnder(dataDir);
    for (const id of new Set(extract.ids)) {
      expect(run.stdout.includes(id) || run.stderr.includes(id)).toBe(false);
      expect(files.some((bytes) => bytes.includes(id))).toBe(false);
    }
  });

  it('audits the vault read once, with the count and no person', () => {
    const log = AuditLog.openReadOnly(auditLogPath(dataDir));
    try {
      const reads = log
        .search({ count: 1000 })
        .matches.filter((e) => JSON.stringify(e).includes('coverage-linkage'));
      expect(reads.length).toBeGreaterThanOrEqual(1);
      const text = JSON.stringify(reads[0]);
      expect(text).toContain(String(persons.filter((p) => !p.reserved).length));
      for (const person of persons) {
        expect(text).not.toContain(person.current.value);
      }
    } finally {
      log.close();
    }
  });

  it('counts malformed rows by reason and line, never echoing the id', () => {
    const good = persons.find((p) => !p.reserved && p.ids[0].kind === 'fnr') as CohortPerson;
    const id = good.current.value;
    const badCheck = id.slice(0, 10) + String((Number(id[10]) + 1) % 10);
    const file = path.join(work, 'malformed.csv');
    fs.writeFileSync(
      file,
      [
        'national_id;resh;contact_date;contact_end;icd10',
        `${badCheck};999001;${YEAR}-03-01;;M54.5`,
        `${id};999001;${YEAR}-13-01;;M54.5`,
        `${id};999001;${YEAR}-03-01`,
        `${id};999001;${YEAR}-03-01;;M54.5`,
      ].join('\n'),
    );
    const run = norpain(['coverage', '--npr', file, '--year', String(YEAR)], { DATA_DIR: dataDir });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/4 rows: 1 used, 3 malformed/);
    expect(run.stdout).toContain('check digits do not match');
    expect(run.stdout).toContain('first malformed lines: 2, 3, 4');
    expect(run.stdout + run.stderr).not.toContain(id);
    expect(run.stdout + run.stderr).not.toContain(badCheck);
  });

  it('refuses a file that is not an extract, and a real-looking id outside production, writing nothing', () => {
    const report = path.join(dataDir, 'reports', `coverage-${YEAR - 1}.json`);
    const noHeader = path.join(work, 'no-header.csv');
    fs.writeFileSync(noHeader, `${persons[0].current.value};999001;${YEAR - 1}-03-01;;M54.5\n`);
    const refused = norpain(['coverage', '--npr', noHeader, '--year', String(YEAR - 1)], { DATA_DIR: dataDir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('header');
    expect(refused.stderr).not.toContain(persons[0].current.value);

    const real = realLookingId();
    const file = path.join(work, 'real.csv');
    fs.writeFileSync(file, `national_id;resh;contact_date;contact_end;icd10\n${real};999001;${YEAR - 1}-03-01;;M54.5\n`);
    const run = norpain(['coverage', '--npr', file, '--year', String(YEAR - 1)], { DATA_DIR: dataDir });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('not synthetic (lines 2)');
    expect(run.stdout + run.stderr).not.toContain(real);
    expect(fs.existsSync(report)).toBe(false);

    const usage = norpain(['coverage', '--npr', file], { DATA_DIR: dataDir });
    expect(usage.code).toBe(2);
  });

  it('in production, links a real-looking id, refuses synthetic ones as malformed, and echoes neither', () => {
    const prodDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-coverage-prod-'));
    try {
      const keyFile = path.join(prodDir, 'issuer.pem');
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      fs.writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
      const env = {
        NODE_ENV: 'production',
        DATA_DIR: path.join(prodDir, 'data'),
        PUBLIC_BASE_URL: 'https://norpain.example.no/fhir',
        AUTH_ISSUER: 'https://helseid.example.no',
        AUTH_AUDIENCE: 'norpain',
        AUTH_PUBLIC_KEY_FILE: keyFile,
        PSEUDONYM_KEYS: `1:${randomBytes(32).toString('base64')}`,
        VAULT_KEY: randomBytes(32).toString('base64'),
        RESERVATION_KEY: randomBytes(32).toString('base64'),
      };
      const real = realLookingId();
      const synthetic = persons[0].current.value;
      const file = path.join(work, 'prod.csv');
      fs.writeFileSync(
        file,
        `national_id;resh;contact_date;contact_end;icd10\n${real};999002;${YEAR}-05-01;;M79.7\n${synthetic};999002;${YEAR}-05-01;;M79.7\n`,
      );
      const run = norpain(['coverage', '--npr', file, '--year', String(YEAR)], env);
      expect(run.stderr).not.toContain(real);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('synthetic test number');
      const report = JSON.parse(
        fs.readFileSync(path.join(env.DATA_DIR, 'reports', `coverage-${YEAR}.json`), 'utf8'),
      ) as { units: Record<string, ExpectedCounts>; extract: { malformed: number } };
      expect(report.units['999002']).toMatchObject({ nprOnly: 1, registryOnly: 0, both: 0, coverage: 0 });
      expect(report.extract.malformed).toBe(1);
      expect(run.stdout).not.toContain(real);
      for (const bytes of filesUnder(env.DATA_DIR)) {
        expect(bytes.includes(real)).toBe(false);
      }
    } finally {
      fs.rmSync(prodDir, { recursive: true, force: true });
    }
  });
});

/**
 * A valid fødselsnummer without the synthetic marker that can belong to nobody: born 1 January 2039
 * (individnummer 500–999 with year 39 means 2000–2039), a date no living person has.
 */
function realLookingId(): string {
  for (let individual = 500; individual < 1000; individual++) {
    const id = withCheckDigits(`010139${individual}`);
    if (id) {
      return id;
    }
  }
  throw new Error('no valid number');
}
