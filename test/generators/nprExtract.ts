import { stringify } from 'csv-stringify/sync';
import { seededRandom } from '../../src/identity';
import type { NationalId } from '../../src/identity';
import { NPR_COLUMNS } from '../../src/coverage/nprExtract';
import { PAIN_DIAGNOSES, syntheticIdFor, type CohortPerson } from './cohort';

/**
 * A synthetic NPR extract (docs/npr-extract.md) that overlaps a synthetic cohort in controlled ways, with
 * the coverage figures its construction implies, so a test can check `norpain coverage` exactly:
 * - per unit, the given share of the persons the registry holds at the unit in the year also have NPR
 *   contacts there (`both`), by their current id or, for persons who changed number or had a D-number,
 *   sometimes by the old one;
 * - per unit, the given number of persons NPR saw whom the registry does not hold (new synthetic FNRs
 *   and D-numbers);
 * - `crossUnit` registered persons whom NPR also saw at another unit, where the registry does not hold
 *   them (NPR-only there, both nationally when NPR saw them at their own unit too);
 * - every reserved person of the cohort, with a contact (reserved: in neither side of the formula);
 * - rows at a unit outside NorPain, rows in another year, and malformed rows.
 */
export interface NprOverlap {
  /** Share (0–1) of the unit's registered persons NPR also saw there. */
  both: number;
  /** Persons NPR saw at the unit whom the registry does not hold. */
  nprOnly: number;
}

export interface NprExtractOptions {
  year: number;
  seed: number;
  overlap: Readonly<Record<string, NprOverlap>>;
  crossUnit?: number;
  /** Rows at a non-participating unit, rows in another year, malformed rows. */
  otherUnitRows?: number;
  otherYearRows?: number;
  malformedRows?: number;
}

export interface ExpectedCounts {
  nprOnly: number;
  registryOnly: number;
  both: number;
  reserved: number;
}

export interface GeneratedExtract {
  csv: string;
  rows: number;
  expected: { units: Record<string, ExpectedCounts>; national: ExpectedCounts };
  /** Every national id in the extract (for tests that check none leaks). */
  ids: string[];
}

export const OUTSIDE_UNIT = '123456';

/** The persons the registry holds at each unit in the year: an episode that started and overlaps it. */
export function registeredInYear(
  persons: readonly CohortPerson[],
  year: number,
): Map<string, CohortPerson[]> {
  const byUnit = new Map<string, CohortPerson[]>();
  for (const person of persons) {
    for (const unit of new Set(
      person.episodes
        .filter((e) => e.start && e.start <= `${year}-12-31` && (e.end ?? '9999') >= `${year}-01-01`)
        .map((e) => e.unit),
    )) {
      const list = byUnit.get(unit) ?? [];
      list.push(person);
      byUnit.set(unit, list);
    }
  }
  return byUnit;
}

export function generateNprExtract(
  persons: readonly CohortPerson[],
  options: NprExtractOptions,
): GeneratedExtract {
  const random = seededRandom(options.seed);
  const { year } = options;
  const used = new Set(persons.flatMap((p) => p.ids.map((id) => id.value)));
  const rows: string[][] = [];
  const ids: string[] = [];
  const inYear = () => dateIn(year, random);
  const contact = (id: NationalId, unit: string, date = inYear()): void => {
    ids.push(id.value);
    rows.push([
      id.value,
      unit,
      date,
      random() < 0.2 ? date : '',
      PAIN_DIAGNOSES[Math.floor(random() * PAIN_DIAGNOSES.length)],
    ]);
  };
  const registered = registeredInYear(
    persons.filter((p) => !p.reserved),
    year,
  );
  const units = Object.keys(options.overlap);
  /** Per unit: who NPR saw (person index or a new id) and who the registry holds there. */
  const nprSeen = new Map<string, Set<string>>(units.map((u) => [u, new Set()]));
  const registryHolds = new Map<string, Set<string>>(
    units.map((u) => [u, new Set((registered.get(u) ?? []).map((p) => `p${p.index}`))]),
  );

  for (const unit of units) {
    const held = registered.get(unit) ?? [];
    const take = Math.round(options.overlap[unit].both * held.length);
    for (const person of shuffled(held, random).slice(0, take)) {
      const visits = 1 + Math.floor(random() * 3);
      for (let v = 0; v < visits; v++) {
        // Any id the person has had links; NPR may still use an old one.
        contact(random() < 0.5 ? person.current : person.ids[Math.floor(random() * person.ids.length)], unit);
      }
      nprSeen.get(unit)?.add(`p${person.index}`);
    }
    for (let n = 0; n < options.overlap[unit].nprOnly; n++) {
      const birth = dateIn(1940 + Math.floor(random() * 60), random);
      const id = syntheticIdFor(random() < 0.1 ? 'dnr' : 'fnr', birth, random, used);
      contact(id, unit);
      if (random() < 0.3) {
        contact(id, unit);
      }
      nprSeen.get(unit)?.add(`n${id.value}`);
    }
  }
  const all = [...new Set([...registered.values()].flat())];
  for (const person of shuffled(all, random).slice(0, options.crossUnit ?? 0)) {
    const elsewhere = units.find((u) => !registryHolds.get(u)?.has(`p${person.index}`));
    if (elsewhere) {
      contact(person.current, elsewhere);
      nprSeen.get(elsewhere)?.add(`p${person.index}`);
    }
  }
  const reservedByUnit = new Map<string, number>(units.map((u) => [u, 0]));
  const reserved = persons.filter((p) => p.reserved);
  for (const [i, person] of reserved.entries()) {
    const unit = units[i % units.length];
    contact(person.current, unit);
    reservedByUnit.set(unit, (reservedByUnit.get(unit) ?? 0) + 1);
  }
  const anyone = all[0] ?? persons[0];
  for (let n = 0; n < (options.otherUnitRows ?? 0); n++) {
    contact(anyone.current, OUTSIDE_UNIT);
  }
  for (let n = 0; n < (options.otherYearRows ?? 0); n++) {
    contact(anyone.current, units[0], dateIn(year - 3, random));
  }
  rows.push(...malformed(options.malformedRows ?? 0, anyone.current.value, units[0], year));
  const ordered = shuffled(rows, random);
  const csv = stringify([[...NPR_COLUMNS], ...ordered], { delimiter: ';' });

  const count = (registry: Set<string>, npr: Set<string>, reservedCount: number): ExpectedCounts => {
    const both = [...npr].filter((p) => registry.has(p)).length;
    return { nprOnly: npr.size - both, registryOnly: registry.size - both, both, reserved: reservedCount };
  };
  const expectedUnits: Record<string, ExpectedCounts> = {};
  for (const unit of units) {
    expectedUnits[unit] = count(
      registryHolds.get(unit) ?? new Set(),
      nprSeen.get(unit) ?? new Set(),
      reservedByUnit.get(unit) ?? 0,
    );
  }
  const union = (m: Map<string, Set<string>>) => new Set([...m.values()].flatMap((s) => [...s]));
  return {
    csv,
    rows: ordered.length,
    expected: {
      units: expectedUnits,
      national: count(union(registryHolds), union(nprSeen), reserved.length),
    },
    ids,
  };
}

/** Rows that must be counted as malformed, never used (one of each kind, round robin). */
function malformed(n: number, validId: string, unit: string, year: number): string[][] {
  const badCheck = validId.slice(0, 10) + String((Number(validId[10]) + 1) % 10);
  const kinds: string[][] = [
    [badCheck, unit, `${year}-03-01`, '', 'M54.5'],
    [validId, unit, `${year}-02-30`, '', 'M54.5'],
    [validId, unit, `${year}-03-01`, '', 'back pain'],
    [validId, 'St. Olavs', `${year}-03-01`, '', 'M54.5'],
    [validId, unit, `${year}-03-01`],
    [validId, unit, `${year}-03-05`, `${year}-03-01`, 'M54.5'],
  ];
  return Array.from({ length: n }, (_, i) => kinds[i % kinds.length]);
}

function dateIn(year: number, random: () => number): string {
  const start = Date.UTC(year, 0, 1);
  const days = Math.floor(random() * 365);
  return new Date(start + days * 86_400_000).toISOString().slice(0, 10);
}

function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
