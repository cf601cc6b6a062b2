import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { containsNationalId } from '../../src/identity';
import { kAnonymityViolations } from '../../src/nordic/anonymise';
import { readUnits } from '../../src/units/units';
import { generateCohort, type CohortOptions, type CohortPerson } from '../generators/cohort';
import { loadCohort } from '../generators/load';
import { norpain } from '../helpers/cli';

const YEAR = 2023;
const QUASI = ['age_band', 'sex', 'health_region', 'year'];

/** The k-anonymity check of the test itself: group the rows by the quasi-identifiers, count. */
function smallestGroup(rows: Record<string, string>[]): number {
  const sizes = new Map<string, number>();
  for (const row of rows) {
    const key = QUASI.map((q) => row[q]).join('|');
    sizes.set(key, (sizes.get(key) ?? 0) + 1);
  }
  return Math.min(...sizes.values());
}

/** The episodes the dataset is about, computed from the cohort: started in the year. */
function startedIn(persons: readonly CohortPerson[], year: number) {
  return persons.flatMap((p) =>
    p.episodes.filter((e) => e.start?.startsWith(`${year}-`)).map((e) => ({ p, e })),
  );
}

const scoreOf = (response: { item?: unknown[] } | undefined, linkId: string): number | undefined => {
  const walk = (items: unknown[] | undefined): number | undefined => {
    for (const item of (items ?? []) as {
      linkId: string;
      item?: unknown[];
      answer?: { valueDecimal?: number; valueInteger?: number; valueCoding?: { code?: string } }[];
    }[]) {
      if (item.linkId === linkId) {
        const a = item.answer?.[0];
        return (
          a?.valueDecimal ?? a?.valueInteger ?? (a?.valueCoding ? Number(a.valueCoding.code) : undefined)
        );
      }
      const nested = walk(item.item);
      if (nested !== undefined) {
        return nested;
      }
    }
    return undefined;
  };
  return walk(response?.item);
};

async function exportCohort(options: Omit<CohortOptions, 'pseudonymiser'>) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-nordic-'));
  const out = path.join(dataDir, 'out');
  const persons = [...generateCohort(options)];
  await loadCohort(dataDir, options);
  const run = norpain(['nordic-export', '--year', String(YEAR), '--out', out], { DATA_DIR: dataDir });
  const csvFile = path.join(out, `norpain-nordic-${YEAR}.csv`);
  const csv = fs.existsSync(csvFile) ? fs.readFileSync(csvFile, 'utf8') : '';
  const rows = csv ? (parse(csv, { columns: true }) as Record<string, string>[]) : [];
  const dictionaryFile = path.join(out, `norpain-nordic-${YEAR}-dictionary.md`);
  const dictionary = fs.existsSync(dictionaryFile) ? fs.readFileSync(dictionaryFile, 'utf8') : '';
  return { dataDir, persons, run, csv, rows, dictionary, out };
}

describe('norpain nordic-export', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('on a small cohort with rare combinations: generalises, suppresses only the rest, and is k-anonymous', async () => {
    const result = await exportCohort({ persons: 90, seed: 5, fromYear: 2022, toYear: 2024 });
    dirs.push(result.dataDir);
    expect(result.run.stderr).toBe('');
    expect(result.run.code).toBe(0);

    // The precondition: at the finest age bands some combination is rare in this cohort.
    const episodes = startedIn(result.persons, YEAR);
    const region = new Map(readUnits().map((u) => [u.resh, u.region]));
    const tenYear = new Map<string, number>();
    for (const { p, e } of episodes) {
      const age = Number((e.start as string).slice(0, 4)) - Number(p.birthDate.slice(0, 4));
      const key = `${Math.min(7, Math.floor(age / 10))}|${p.gender}|${region.get(e.unit)}`;
      tenYear.set(key, (tenYear.get(key) ?? 0) + 1);
    }
    expect(Math.min(...tenYear.values())).toBeLessThan(5);

    expect(result.rows.length).toBeGreaterThan(0);
    expect(smallestGroup(result.rows)).toBeGreaterThanOrEqual(5);
    const suppressed = Number(
      /Suppressed \(left out, last resort\): (\d+) of (\d+)/.exec(result.dictionary)?.[1],
    );
    expect(result.rows.length + suppressed).toBe(episodes.length);
    expect(result.dictionary).not.toContain('this year: 10-year bands');
  });

  it('holds the agreed variables only: bands, years, no id of any kind', async () => {
    const result = await exportCohort({ persons: 800, seed: 8, fromYear: 2021, toYear: 2024 });
    dirs.push(result.dataDir);
    expect(result.run.code).toBe(0);
    expect(Object.keys(result.rows[0])).toEqual([
      ...QUASI,
      'pain_intensity_0',
      'bpi_interference_0',
      'hscl25_0',
      'isi_0',
      'fatigue_0',
      'eq5d_vas_0',
      'pain_intensity_12',
      'bpi_interference_12',
      'hscl25_12',
      'isi_12',
      'pgic_12',
    ]);
    expect(smallestGroup(result.rows)).toBeGreaterThanOrEqual(5);
    for (const row of result.rows) {
      expect(row.age_band).toMatch(/^(\d+-\d+|\d+\+|unknown)$/);
      expect(row.year).toBe(String(YEAR));
      expect(['female', 'male', 'other/unknown']).toContain(row.sex);
    }
    expect(result.csv).not.toMatch(/\d{4}-\d{2}/);
    expect(containsNationalId(result.csv)).toBe(false);
    for (const person of result.persons) {
      expect(result.csv).not.toContain(person.patientId);
      expect(result.csv).not.toContain(person.pseudonym);
    }

    // The scores are the registry's: the same values as the cohort's forms, episode for episode.
    const episodes = startedIn(result.persons, YEAR);
    const expected = episodes
      .map(({ e }) => scoreOf(e.baseline, 'smerteintensitet'))
      .map((v) => (v === undefined ? '' : String(v)))
      .sort();
    const suppressed = Number(/Suppressed \(left out, last resort\): (\d+)/.exec(result.dictionary)?.[1]);
    expect(suppressed).toBe(0);
    expect(result.rows.map((r) => r.pain_intensity_0).sort()).toEqual(expected);
    const pgic = episodes
      .map(({ e }) => scoreOf(e.followUp, 'pgic-global'))
      .map((v) => (v === undefined ? '' : String(v)))
      .sort();
    expect(result.rows.map((r) => r.pgic_12).sort()).toEqual(pgic);
    expect(pgic.some((v) => v !== '')).toBe(true);
  });

  it('refuses wrong arguments and writes nothing', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-nordic-args-'));
    dirs.push(dataDir);
    const out = path.join(dataDir, 'out');
    expect(norpain(['nordic-export', '--year', '23', '--out', out], { DATA_DIR: dataDir }).code).toBe(2);
    expect(norpain(['nordic-export', '--out', out], { DATA_DIR: dataDir }).code).toBe(2);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('its own check finds a combination under 5', () => {
    const row = (ageBand: string, sex: string) => ({ ageBand, sex, region: 'Helse Nord', year: YEAR });
    const rows = [...Array.from({ length: 5 }, () => row('18-39', 'female')), row('40-59', 'male')];
    expect(kAnonymityViolations(rows)).toEqual([
      { combination: JSON.stringify(['40-59', 'male', 'Helse Nord', YEAR]), count: 1 },
    ]);
    expect(kAnonymityViolations(rows.slice(0, 5))).toEqual([]);
  });
});
