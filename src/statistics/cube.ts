/**
 * A table of aggregates over a few dimensions, with every margin: the cells of `unit × sex` are each
 * unit and sex, each unit's total over the sexes, each sex's total over the units and the grand total.
 * Everything the registry publishes is a slice of such a table (src/statistics/suppression.ts explains
 * why the margins belong to the same table as the cells).
 *
 * A cell is addressed by one coordinate per dimension: the index of a value, or TOTAL for "all values".
 */

export interface Dimension {
  name: string;
  /** The values, in the order they are shown. */
  values: readonly string[];
}

/** The coordinate of a dimension's total. */
export const TOTAL = -1;

export class Cube {
  /** Number of cells, margins included. */
  readonly size: number;
  private readonly strides: number[];

  constructor(readonly dimensions: readonly Dimension[]) {
    this.strides = [];
    let size = 1;
    for (const dimension of [...dimensions].reverse()) {
      this.strides.unshift(size);
      size *= dimension.values.length + 1;
    }
    this.size = size;
  }

  /** The cell at these coordinates (value index or TOTAL per dimension). */
  index(coords: readonly number[]): number {
    let index = 0;
    coords.forEach((c, d) => {
      index += (c === TOTAL ? this.dimensions[d].values.length : c) * this.strides[d];
    });
    return index;
  }

  coords(index: number): number[] {
    return this.dimensions.map((dimension, d) => {
      const c = Math.floor(index / this.strides[d]) % (dimension.values.length + 1);
      return c === dimension.values.length ? TOTAL : c;
    });
  }

  /** How many of the cell's coordinates are totals: 0 for an inner cell, all for the grand total. */
  totalsIn(index: number): number {
    return this.coords(index).filter((c) => c === TOTAL).length;
  }

  /**
   * Every line of the table: the cells along one dimension, the others held fixed (at a value or at their
   * total), with the cell that is their sum. The published totals are exactly these sums.
   */
  lines(): Line[] {
    const lines: Line[] = [];
    for (let index = 0; index < this.size; index++) {
      const coords = this.coords(index);
      coords.forEach((c, d) => {
        if (c !== TOTAL) return;
        const cells = this.dimensions[d].values.map((_, v) => {
          const at = [...coords];
          at[d] = v;
          return this.index(at);
        });
        lines.push({ dimension: d, total: index, cells });
      });
    }
    return lines;
  }

  /** The cells a record with these value indexes adds to: its inner cell and every margin above it. */
  cellsOf(valueIndexes: readonly number[]): number[] {
    const cells: number[] = [];
    const combinations = 1 << valueIndexes.length;
    for (let mask = 0; mask < combinations; mask++) {
      cells.push(this.index(valueIndexes.map((v, d) => (mask & (1 << d) ? TOTAL : v))));
    }
    return cells;
  }
}

export interface Line {
  dimension: number;
  /** The cell holding the line's sum. */
  total: number;
  /** The cells summed, one per value of the dimension. */
  cells: number[];
}

/** What one record contributes: who it is about, where it falls, and the value measured (if any). */
export interface Observation {
  person: string;
  /** One value per dimension, as in Dimension.values; a record whose value is not listed is left out. */
  at: readonly string[];
  value?: number;
}

/** Per cell: distinct persons, records, and the values measured (for means and medians). */
export interface Tabulation {
  cube: Cube;
  persons: number[];
  records: number[];
  values: number[][];
}

/** Counts the observations into every cell they belong to, margins included. */
export function tabulate(cube: Cube, observations: Iterable<Observation>): Tabulation {
  const persons = new Array<number>(cube.size).fill(0);
  const records = new Array<number>(cube.size).fill(0);
  const values: number[][] = Array.from({ length: cube.size }, () => []);
  const seen: Set<string>[] = Array.from({ length: cube.size }, () => new Set());
  const lookup = cube.dimensions.map((d) => new Map(d.values.map((v, i) => [v, i])));
  for (const observation of observations) {
    const indexes = observation.at.map((value, d) => lookup[d].get(value));
    if (indexes.some((i) => i === undefined)) continue;
    for (const cell of cube.cellsOf(indexes as number[])) {
      records[cell]++;
      if (!seen[cell].has(observation.person)) {
        seen[cell].add(observation.person);
        persons[cell]++;
      }
      if (observation.value !== undefined) values[cell].push(observation.value);
    }
  }
  return { cube, persons, records, values };
}

export function mean(values: readonly number[]): number | undefined {
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
