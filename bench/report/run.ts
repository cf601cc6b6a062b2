/**
 * Annual report benchmark (not a test): loads a synthetic cohort in bulk into a DATA_DIR (the cohort
 * generator, test/generators) and times `norpain report --year YYYY` over it, HTML, CSV and PDF included.
 * Issue 15's goal: a report over 100,000 persons in at most 60 s.
 *
 *   npx tsx bench/report/run.ts [--persons 100000] [--year 2024] [--data-dir DIR] [--keep]
 *
 * With --data-dir naming a folder that already holds a loaded cohort, the load is skipped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { main } from '../../src/cli/main';
import { annualReportFile } from '../../src/reports/files';
import { DEFAULT_CHROMIUM, printPdf } from '../../src/reports/pdf';
import { EmbeddedStore } from '../../src/store/embedded';
import { loadCohort } from '../../test/generators/load';

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      persons: { type: 'string', default: '100000' },
      year: { type: 'string', default: '2024' },
      'data-dir': { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const persons = Number(values.persons);
  const year = Number(values.year);
  const dataDir = values['data-dir'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-bench-report-'));
  const loaded = fs.existsSync(EmbeddedStore.defaultFile(dataDir));
  if (!loaded) {
    const summary = await loadCohort(dataDir, {
      persons,
      seed: 20261207,
      fromYear: year - 2,
      toYear: year + 1,
    });
    const total = Object.values(summary.resources).reduce((a, b) => a + b, 0);
    process.stdout.write(
      `loaded ${summary.persons} persons, ${total} resources in ${summary.seconds.toFixed(1)} s\n`,
    );
  }
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 100);
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  const out = path.join(dataDir, 'bench-reports');
  const code = await main(['report', '--year', String(year), '--out', out], {
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    CHROMIUM_PATH: process.env.CHROMIUM_PATH,
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  clearInterval(sampler);
  // Chromium's printing is a fixed cost whatever the registry's size: timed apart, on the page just made.
  const html = annualReportFile(out, year, 'html');
  const printing = performance.now();
  await printPdf(
    html,
    path.join(dataDir, 'bench-reprint.pdf'),
    process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM,
  );
  const pdfSeconds = (performance.now() - printing) / 1000;
  process.stdout.write(
    `report ${year} over ${loaded ? 'the loaded' : persons} persons: ${seconds.toFixed(1)} s (exit ${code}), ` +
      `of which about ${pdfSeconds.toFixed(1)} s Chromium's PDF (timed again apart); ` +
      `${((cpu.user + cpu.system) / 1e6).toFixed(1)} CPU s in this process (Chromium apart); ` +
      `peak RSS ${(peakRss / 1024 / 1024).toFixed(0)} MB; goal <= 60 s\n`,
  );
  if (!values.keep && values['data-dir'] === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
}

run().catch((err: unknown) => {
  process.stderr.write(`bench/report: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
