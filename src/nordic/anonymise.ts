/**
 * k-anonymity for the Nordic dataset (issue 15): every combination of the quasi-identifiers (age band,
 * sex, health region, year) must be shared by at least k persons. Generalise first, suppress last:
 *
 * 1. rare categories are merged up front: sex other/unknown into one category, ages from 70 in one band;
 * 2. full-domain generalisation of age, the one quasi-identifier with an order: 10-year bands, then
 *    20-year bands, then one band; the first level at which the rows in too small groups are at most
 *    MAX_SUPPRESSED of all rows is taken;
 * 3. the rows still in groups under k are suppressed (left out, counted in the data dictionary).
 * `kAnonymityViolations` then checks the result from scratch; the command writes nothing unless it
 * finds none.
 */
export const K = 5;
/** Largest share of rows suppression may remove before a coarser age level is preferred. */
export const MAX_SUPPRESSED = 0.02;

export interface QuasiIdentifiers {
  /** Age at the start of the episode, in whole years (undefined when the birth date is unknown). */
  age: number | undefined;
  sex: string;
  region: string;
  year: number;
}

export interface AgeLevel {
  name: string;
  band(age: number | undefined): string;
}

const bands =
  (edges: readonly number[]) =>
  (age: number | undefined): string => {
    if (age === undefined) {
      return 'unknown';
    }
    for (let i = edges.length - 1; i >= 0; i--) {
      if (age >= edges[i]) {
        return i === edges.length - 1 ? `${edges[i]}+` : `${edges[i]}-${edges[i + 1] - 1}`;
      }
    }
    return `under ${edges[0]}`;
  };

const AGE_LEVELS: readonly AgeLevel[] = [
  { name: '10-year bands from 18, 70 and over in one', band: bands([18, 30, 40, 50, 60, 70]) },
  { name: '20-year bands from 18, 60 and over in one', band: bands([18, 40, 60]) },
  { name: 'one band, 18 and over', band: bands([18]) },
];

/** The merged sex category: FHIR's other and unknown are too rare to stand alone. */
export function sexCategory(gender: string | undefined): string {
  return gender === 'female' || gender === 'male' ? gender : 'other/unknown';
}

export interface Generalised<T> {
  level: AgeLevel;
  rows: (T & { ageBand: string })[];
  suppressed: number;
}

const keyOf = (r: { ageBand: string; sex: string; region: string; year: number }) =>
  JSON.stringify([r.ageBand, r.sex, r.region, r.year]);

/** Generalises age, then suppresses the rows of groups still under k (see above). */
export function anonymise<T extends QuasiIdentifiers>(rows: readonly T[], k = K): Generalised<T> {
  let best: Generalised<T> | undefined;
  for (const level of AGE_LEVELS) {
    const banded = rows.map((r) => ({ ...r, ageBand: level.band(r.age) }));
    const sizes = new Map<string, number>();
    for (const r of banded) {
      sizes.set(keyOf(r), (sizes.get(keyOf(r)) ?? 0) + 1);
    }
    const kept = banded.filter((r) => (sizes.get(keyOf(r)) ?? 0) >= k);
    best = { level, rows: kept, suppressed: banded.length - kept.length };
    if (best.suppressed <= MAX_SUPPRESSED * rows.length) {
      break;
    }
  }
  return best ?? { level: AGE_LEVELS[0], rows: [], suppressed: 0 };
}

/** The quasi-identifier combinations shared by fewer than k rows (empty when the rows are k-anonymous). */
export function kAnonymityViolations(
  rows: readonly { ageBand: string; sex: string; region: string; year: number }[],
  k = K,
): { combination: string; count: number }[] {
  const sizes = new Map<string, number>();
  for (const r of rows) {
    sizes.set(keyOf(r), (sizes.get(keyOf(r)) ?? 0) + 1);
  }
  return [...sizes.entries()]
    .filter(([, n]) => n < k)
    .map(([combination, count]) => ({ combination, count }));
}
