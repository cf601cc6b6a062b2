import fs from 'node:fs';
import path from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import cliProgress from 'cli-progress';
import { parseOptions, UsageError, type CliCommand } from '../cli/command';
import { loadConfig } from '../config';
import { openStore } from '../server';
import { scanResources } from '../store/scan';
import { readEpisodes } from '../statistics/episodes';
import { readUnits } from '../units/units';
import { buildAnnualReport, REPORT_FORMS, REPORT_VARIABLES } from './annual';
import { readCoverage } from './coverage';
import { renderCsv } from './csv';
import { annualReportFile } from './files';
import { DEFAULT_CHROMIUM, printPdf } from './pdf';

const USAGE = `norpain report --year YYYY [--unit RESH] [--out DIR]

Writes the annual report of the year from the clinical store: a self-contained HTML page (national
figures with every unit beside them, then a section per unit), the same figures as CSV, and a PDF of the
page printed by Chromium. Every table and chart goes through the registry's suppression rule (cells under
5 persons hidden, with complementary suppression). Coverage is read from what norpain coverage wrote
(DATA_DIR/reports/coverage-YYYY.json); without it the report says coverage was not measured.
  --year  the year (episodes referred in it; 12-month follow-up of episodes ended the year before)
  --unit  one unit's report (its section and the national figures) instead of all units
  --out   where to write (default DATA_DIR/reports, where GET /public/annual/YYYY finds the national report)
Chromium is /usr/bin/chromium unless CHROMIUM_PATH names another.`;

const TYPES = ['Patient', 'EpisodeOfCare', 'QuestionnaireResponse'] as const;

export const reportCommand: CliCommand = {
  name: 'report',
  summary: 'write the annual report of a year (HTML, CSV and PDF)',
  usage: USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, {
      year: { type: 'string' },
      unit: { type: 'string' },
      out: { type: 'string' },
    });
    if (values.year === undefined || !/^\d{4}$/.test(values.year)) {
      throw new UsageError('--year YYYY is required (four digits)');
    }
    const year = Number(values.year);
    const config = loadConfig(env);
    const units = readUnits(config.unitsFile);
    const shown = values.unit === undefined ? units : units.filter((u) => u.resh === values.unit);
    if (shown.length === 0) {
      throw new UsageError(
        `--unit ${values.unit} is not a participating unit (${units.map((u) => u.resh).join(', ')})`,
      );
    }
    const outDir = values.out ?? path.join(config.dataDir, 'reports');
    const coverage = readCoverage(config.dataDir, year);
    const store = await openStore(config);
    const bar = new cliProgress.SingleBar(
      { format: 'report {bar} {percentage}% | {value}/{total} | {stage}', stream: process.stderr, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
    try {
      let resources = 0;
      for (const type of TYPES) {
        const counted = await store.search(parseSearchRequest(type, { _count: '0', _total: 'accurate' }));
        resources += counted.total ?? 0;
      }
      const steps = 3;
      bar.start(resources + steps, 0, { stage: 'reading the registry' });
      const episodes = await readEpisodes((type) => scanResources(store, { resourceType: type }), {
        variables: new Set(REPORT_VARIABLES),
        forms: REPORT_FORMS,
        progress: () => bar.increment(),
      });
      bar.update(resources, { stage: 'tables (suppression)' });
      const report = buildAnnualReport({ year, episodes, units, shownUnits: shown, coverage });
      bar.increment({ stage: 'HTML and charts' });
      // Vega is loaded only when a report is made, so that other norpain commands start as fast as before.
      const { renderHtml } = await import('./html');
      const html = await renderHtml(report);
      fs.mkdirSync(outDir, { recursive: true });
      const file = (ext: 'html' | 'csv' | 'pdf') => annualReportFile(outDir, year, ext, values.unit);
      fs.writeFileSync(file('html'), html);
      fs.writeFileSync(file('csv'), renderCsv(report));
      bar.increment({ stage: 'PDF (Chromium)' });
      await printPdf(file('html'), file('pdf'), env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM);
      bar.increment({ stage: 'done' });
      bar.stop();
      process.stdout.write(
        `annual report ${year}: ${episodes.filter((e) => e.year === year).length} episodes referred in the year\n` +
          `${file('html')}\n${file('csv')}\n${file('pdf')}\n`,
      );
      return 0;
    } finally {
      bar.stop();
      await store.close();
    }
  },
};
