/**
 * Coverage and Nordic dataset benchmark (not a test): times `norpain coverage` and `norpain
 * nordic-export` over a synthetic cohort loaded in bulk, with an NPR extract that overlaps it.
 *
 *   npx tsx bench/coverage/run.ts --data-dir DIR [--persons 100000] [--seed 1] [--year 2023]
 *
 * DIR is loaded with the cohort first unless it already holds one made with the same --persons and --seed
 * (e.g. by `npx tsx test/generators/cohort.ts`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { main } from '../../src/cli/main';
import { EmbeddedStore } from '../../src/store/embedded';
import { generateCohort, type CohortPerson } from '../../test/generators/cohort';
import { loadCohort } from '../../test/generators/load';
import { generateNprExtract } from '../../test/generators/nprExtract';
import { readUnits } from '../../src/units/units';

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      persons: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      year: { type: 'string', default: '2023' },
    },
  });
  const dataDir = values['data-dir'];
  if (!dataDir) {
    throw new Error('--data-dir DIR is required');
  }
  const cohort = { persons: Number(values.persons), seed: Number(values.seed), fromYear: 2021, toYear: 2024 };
  if (!fs.existsSync(EmbeddedStore.defaultFile(dataDir))) {
    const loaded = await loadCohort(dataDir, cohort);
    console.log(`loaded ${loaded.persons} persons in ${loaded.seconds.toFixed(1)} s`);
  }
  // The persons without their resources: the extract needs ids, units and dates only.
  const persons: CohortPerson[] = [];
  for (const person of generateCohort(cohort)) {
    persons.push({ ...person, resources: [], episodes: person.episodes.map((e) => ({ ...e, baseline: undefined, followUp: undefined })) });
  }
  const overlap = Object.fromEntries(
    readUnits().map((u, i) => [u.resh, { both: 0.6 + 0.08 * i, nprOnly: Math.round(persons.length * 0.02) }]),
  );
  const extract = generateNprExtract(persons, { year: Number(values.year), seed: 2, overlap, crossUnit: 100 });
  const file = path.join(dataDir, `npr-bench-${values.year}.csv`);
  fs.writeFileSync(file, extract.csv, { mode: 0o600 });
  const env = { ...process.env, DATA_DIR: dataDir };

  let started = performance.now();
  await main(['coverage', '--npr', file, '--year', String(values.year)], env);
  const coverageSeconds = (performance.now() - started) / 1000;
  fs.rmSync(file);

  started = performance.now();
  await main(['nordic-export', '--year', String(values.year), '--out', path.join(dataDir, 'nordic')], env);
  const nordicSeconds = (performance.now() - started) / 1000;
  console.log(
    `coverage: ${extract.rows} NPR rows against ${persons.length} persons in ${coverageSeconds.toFixed(1)} s; ` +
      `nordic-export in ${nordicSeconds.toFixed(1)} s; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
}

run().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
