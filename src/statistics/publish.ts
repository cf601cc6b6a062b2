import { Cube, mean, median, tabulate, TOTAL, type Dimension, type Observation } from './cube';
import { suppressionPattern } from './suppression';

/**
 * A table as the registry may publish it: every cell and margin of one cube, with the suppression rule
 * applied once to the whole (src/statistics/suppression.ts). A hidden cell carries no figure at all:
 * neither its persons, nor its records, nor a mean or median of its values.
 */

export interface PublishedCell {
  /** The cell's value per dimension; undefined for the dimension's total. */
  at: Record<string, string | undefined>;
  hidden: boolean;
  persons?: number;
  records?: number;
  mean?: number;
  median?: number;
}

export interface PublishedTable {
  dimensions: readonly Dimension[];
  cells: PublishedCell[];
}

export function publishTable(
  dimensions: readonly Dimension[],
  observations: Iterable<Observation>,
): PublishedTable {
  const cube = new Cube(dimensions);
  const t = tabulate(cube, observations);
  const hidden = suppressionPattern(cube, t.persons);
  const cells = t.persons.map((persons, index): PublishedCell => {
    const coords = cube.coords(index);
    const at = Object.fromEntries(
      dimensions.map((d, i) => [d.name, coords[i] === TOTAL ? undefined : d.values[coords[i]]]),
    );
    if (hidden[index]) return { at, hidden: true };
    return {
      at,
      hidden: false,
      persons,
      records: t.records[index],
      mean: mean(t.values[index]),
      median: median(t.values[index]),
    };
  });
  return { dimensions, cells };
}

/** The cell at these values (a dimension left out, or undefined, is its total). */
export function cellAt(table: PublishedTable, at: Record<string, string | undefined>): PublishedCell {
  const found = table.cells.find((cell) => table.dimensions.every((d) => cell.at[d.name] === at[d.name]));
  if (found === undefined) throw new Error('no such cell');
  return found;
}

/** The table grouped by these dimensions (their cells and margins): the other dimensions at their totals. */
export function slice(table: PublishedTable, groupBy: readonly string[]): PublishedCell[] {
  return table.cells.filter((cell) =>
    table.dimensions.every((d) => groupBy.includes(d.name) || cell.at[d.name] === undefined),
  );
}
