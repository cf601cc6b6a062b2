import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { parseOptions, UsageError, yearOption, type CliCommand } from '../cli/command';
import { loadConfig } from '../config';
import { openStore } from '../server';
import { readUnits } from '../units/units';
import { anonymise, K, kAnonymityViolations, MAX_SUPPRESSED, type Generalised } from './anonymise';
import { nordicRows, SCORES, type NordicRow } from './dataset';

const USAGE = `norpain nordic-export --year YYYY --out DIR

Writes the anonymised dataset shared with the Nordic pain registries for the episodes that started in
YYYY: DIR/norpain-nordic-YYYY.csv (one row per episode: age band, sex, health region, year and the main
scores at baseline and 12 months, no id of any kind) and DIR/norpain-nordic-YYYY-dictionary.md (what each
column means and how the data were anonymised). Every combination of age band, sex, health region and
year is shared by at least ${K} persons: age is generalised first, rows are suppressed only as the last
resort, and the command checks the result itself before it writes; it writes nothing otherwise.
  --year YYYY  the year the episodes started
  --out DIR    where the two files are written (created if absent)`;

const QUASI = ['age_band', 'sex', 'health_region', 'year'] as const;

export const nordicExportCommand: CliCommand = {
  name: 'nordic-export',
  summary: 'the anonymised dataset for the Nordic pain registries (k-anonymous CSV + data dictionary)',
  usage: USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, { year: { type: 'string' }, out: { type: 'string' } });
    if (values.year === undefined || values.out === undefined) {
      throw new UsageError('--year YYYY and --out DIR are required');
    }
    const year = yearOption(values.year);
    const config = loadConfig(env);
    const units = readUnits(config.unitsFile);
    const store = await openStore(config);
    let rows: NordicRow[];
    try {
      rows = await nordicRows(store, year, units);
    } finally {
      await store.close();
    }
    const result = anonymise(rows);
    const violations = kAnonymityViolations(result.rows);
    if (violations.length > 0) {
      process.stderr.write(
        `norpain nordic-export: ${violations.length} combinations of ${QUASI.join(', ')} have fewer than ${K} persons; nothing was written.\n`,
      );
      return 1;
    }
    fs.mkdirSync(values.out, { recursive: true });
    const csvFile = path.join(values.out, `norpain-nordic-${year}.csv`);
    const dictionaryFile = path.join(values.out, `norpain-nordic-${year}-dictionary.md`);
    fs.writeFileSync(csvFile, toCsv(result));
    fs.writeFileSync(dictionaryFile, dictionary(year, rows.length, result));
    process.stdout.write(
      `wrote ${result.rows.length} rows (${rows.length} episodes started in ${year}, ${result.suppressed} suppressed; ` +
        `age in ${result.level.name}) to ${csvFile}, and its data dictionary to ${dictionaryFile}\n`,
    );
    return 0;
  },
};

function toCsv(result: Generalised<NordicRow>): string {
  const header = [...QUASI, ...SCORES.map((s) => s.name)];
  // Sorted by the values themselves, so the order says nothing about who is who or when they came.
  const body = result.rows
    .map((r) => [r.ageBand, r.sex, r.region, String(r.year), ...SCORES.map((s) => format(r.scores[s.name]))])
    .sort((a, b) => a.join('\u0000').localeCompare(b.join('\u0000')));
  return stringify([header, ...body]);
}

function format(value: number | undefined): string {
  return value === undefined ? '' : String(Math.round(value * 100) / 100);
}

function dictionary(year: number, episodes: number, result: Generalised<NordicRow>): string {
  const bandsSeen = [...new Set(result.rows.map((r) => r.ageBand))].sort();
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    `# NorPain – Nordic dataset ${year}: data dictionary`,
    '',
    `One row per episode of care that started (first consultation) in ${year} at a NorPain unit. ` +
      'There is no identifier of any kind, no pseudonym and no date; persons cannot be followed between rows or years.',
    '',
    line(['column', 'meaning', 'values']),
    line(['---', '---', '---']),
    line(['age_band', 'age at the start of the episode', `${result.level.name}: ${bandsSeen.join(', ')}`]),
    line(['sex', 'sex as registered (FHIR gender)', 'female, male, other/unknown (merged: rare)']),
    line([
      'health_region',
      'the regional health authority of the unit',
      'Helse Sør-Øst, Helse Vest, Helse Midt-Norge, Helse Nord',
    ]),
    line(['year', 'the year the episode started', String(year)]),
    ...SCORES.map((s) =>
      line([
        s.name,
        `${s.description} (${s.questionnaire.endsWith('-12m') ? '12-month form' : 'baseline form'}, item ${s.linkId}, as the registry computed it)`,
        `${s.values}; empty when not answered or not computable`,
      ]),
    ),
    '',
    '## Anonymisation',
    '',
    `- Quasi-identifiers: ${QUASI.join(', ')}. Every combination of them is shared by at least ${K} rows ` +
      '(k-anonymity, checked by the export itself before writing).',
    `- Age is generalised over the whole dataset to the finest level at which at most ${MAX_SUPPRESSED * 100} % ` +
      `of the rows would have to be suppressed; this year: ${result.level.name}.`,
    '- Sex other and unknown are merged; ages from 70 are one band.',
    `- Suppressed (left out, last resort): ${result.suppressed} of ${episodes} episodes.`,
    '- Scores are rounded to two decimals; the 12-month scores belong to the form answered 9–18 months after the episode ended.',
    '',
  ].join('\n');
}
