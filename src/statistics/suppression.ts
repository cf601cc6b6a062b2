import type { Cube, Line } from './cube';

/**
 * THE suppression rule for everything the registry publishes: the statistics operation ($stats), the
 * annual report's tables and charts, and its CSV (DESIGN §3.5: no aggregate cell under 5 people).
 * docs/statistics.md sets out the attacks and which measure defeats each; in short:
 *
 * 1. Primary suppression — a cell of 1–4 persons is not shown (a small group, or one person, would be
 *    recognisable from its sex, age band, unit and year). A cell of 0 persons is shown: it is nobody.
 * 2. Complementary suppression — totals are published, and each total is the sum of its line. A line
 *    with one hidden cell gives it away by subtraction (total − the others), so every line with a hidden
 *    cell has at least two, and the hidden cells of a line whose total is shown add up to at least 5
 *    persons (else "these two hide 3 persons between them" is itself a small group). The cells hidden
 *    for this are the smallest non-empty ones, preferring inner cells so that totals stay visible.
 * 3. Linear recovery — in a table of more than one dimension, two hidden cells per line are not
 *    always enough: the lines' equations together can still pin a hidden cell down (a hidden cell in a
 *    margin that is the sum of cells all recoverable elsewhere, say). The rule solves the system an
 *    attacker would solve — every published line equation, with the hidden cells as unknowns — and hides
 *    one more cell beside any cell the system determines, until none is.
 * 4. Differencing between queries — the pattern depends only on the table, and every published figure
 *    (a cell, a margin, a mean with its count) comes from one table computed over the caller's whole
 *    population, never from a table built for the query's filters. Callers choose whole dimension values
 *    to show, never the population (src/statistics/operation.ts), so two queries cannot differ by one
 *    person: they are slices of the same suppressed table.
 *
 * The pattern is structural: a mean, a median or an episode count of a cell is published only where the
 * cell's persons are, so the same equations protect every figure of the cell.
 */

export const THRESHOLD = 5;

/** Which cells of the table are hidden, given each cell's number of persons (margins included). */
export function suppressionPattern(cube: Cube, persons: readonly number[], threshold = THRESHOLD): boolean[] {
  const hidden = persons.map((n) => n > 0 && n < threshold);
  const lines = cube.lines();
  const linesOf: Line[][] = Array.from({ length: cube.size }, () => []);
  for (const line of lines) {
    for (const cell of [...line.cells, line.total]) linesOf[cell].push(line);
  }
  const choose = (line: Line): number | undefined => {
    const candidates = line.cells.filter((c) => !hidden[c]);
    candidates.sort(
      (a, b) =>
        Number(persons[a] === 0) - Number(persons[b] === 0) ||
        cube.totalsIn(a) - cube.totalsIn(b) ||
        persons[a] - persons[b] ||
        a - b,
    );
    return candidates[0] ?? (hidden[line.total] ? undefined : line.total);
  };
  for (;;) {
    if (protectLines(lines, persons, hidden, threshold, choose)) continue;
    const determined = determinedCells(lines, hidden);
    if (determined.length === 0) return hidden;
    // Hide one more cell beside the first recoverable one, in the line where the added cost is least.
    const options = linesOf[determined[0]]
      .map(choose)
      .filter((c): c is number => c !== undefined)
      .sort((a, b) => persons[a] - persons[b] || a - b);
    if (options.length === 0) {
      // Cannot happen: a cell whose every line is hidden is not determined by them.
      throw new Error('suppression cannot protect a cell');
    }
    hidden[options[0]] = true;
  }
}

/**
 * Rule 2 on every line; returns whether it hid anything. A hidden total with every cell shown is the
 * sum of what is shown, so it needs a hidden cell beside it too.
 */
function protectLines(
  lines: readonly Line[],
  persons: readonly number[],
  hidden: boolean[],
  threshold: number,
  choose: (line: Line) => number | undefined,
): boolean {
  let changed = false;
  for (const line of lines) {
    const hiddenCells = line.cells.filter((c) => hidden[c]);
    const totalHidden = hidden[line.total];
    const count = hiddenCells.length + Number(totalHidden);
    if (count === 0) continue;
    const hiddenPersons = hiddenCells.reduce((sum, c) => sum + persons[c], 0);
    const exposed =
      count === 1 ||
      (totalHidden && hiddenCells.length === 0) ||
      (!totalHidden && hiddenPersons < threshold && hiddenCells.length < line.cells.length);
    if (!exposed) continue;
    const cell = choose(line);
    if (cell !== undefined) {
      hidden[cell] = true;
      changed = true;
    }
  }
  return changed;
}

/**
 * The hidden cells an attacker can compute exactly from the published line equations: those whose unit
 * vector lies in the row space of the equations restricted to the hidden cells (a row of the reduced
 * row echelon form with a single non-zero entry).
 */
function determinedCells(lines: readonly Line[], hidden: readonly boolean[]): number[] {
  const unknowns = hidden.flatMap((h, cell) => (h ? [cell] : []));
  const column = new Map(unknowns.map((cell, i) => [cell, i]));
  const rows: Float64Array[] = [];
  for (const line of lines) {
    const row = new Float64Array(unknowns.length);
    let any = false;
    for (const cell of line.cells) {
      const c = column.get(cell);
      if (c !== undefined) {
        row[c] += 1;
        any = true;
      }
    }
    const t = column.get(line.total);
    if (t !== undefined) {
      row[t] -= 1;
      any = true;
    }
    if (any) rows.push(row);
  }
  const EPS = 1e-9;
  let rank = 0;
  for (let col = 0; col < unknowns.length && rank < rows.length; col++) {
    let pivot = -1;
    let best = EPS;
    for (let r = rank; r < rows.length; r++) {
      if (Math.abs(rows[r][col]) > best) {
        best = Math.abs(rows[r][col]);
        pivot = r;
      }
    }
    if (pivot < 0) continue;
    [rows[rank], rows[pivot]] = [rows[pivot], rows[rank]];
    const p = rows[rank];
    const scale = p[col];
    for (let k = col; k < p.length; k++) p[k] /= scale;
    for (let r = 0; r < rows.length; r++) {
      if (r === rank) continue;
      const f = rows[r][col];
      if (Math.abs(f) <= EPS) continue;
      const row = rows[r];
      for (let k = col; k < row.length; k++) row[k] -= f * p[k];
    }
    rank++;
  }
  const determined: number[] = [];
  for (let r = 0; r < rank; r++) {
    let nonZero = -1;
    let count = 0;
    for (let k = 0; k < unknowns.length && count < 2; k++) {
      if (Math.abs(rows[r][k]) > EPS) {
        nonZero = k;
        count++;
      }
    }
    if (count === 1) determined.push(unknowns[nonZero]);
  }
  return determined;
}
