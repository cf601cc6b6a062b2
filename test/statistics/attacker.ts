/**
 * An attacker who knows every published cell and every published total of a table, written independently
 * of src/statistics (exact rational arithmetic with BigInt, and a rank test instead of reduced rows): a
 * hidden cell is recoverable when adding its unit vector to the published equations does not raise their
 * rank. Each equation is a line: its total is the sum of its cells.
 */

export interface LineEquation {
  total: number;
  cells: readonly number[];
}

type Fraction = [bigint, bigint];

function rank(rows: bigint[][]): number {
  const m = rows.map((r) => r.map((v): Fraction => [v, 1n]));
  const width = m[0]?.length ?? 0;
  let r = 0;
  for (let c = 0; c < width && r < m.length; c++) {
    const p = m.findIndex((row, i) => i >= r && row[c][0] !== 0n);
    if (p < 0) continue;
    [m[r], m[p]] = [m[p], m[r]];
    for (let i = 0; i < m.length; i++) {
      if (i === r || m[i][c][0] === 0n) continue;
      const [fn, fd] = [m[i][c][0] * m[r][c][1], m[i][c][1] * m[r][c][0]];
      m[i] = m[i].map(([an, ad], k) => {
        const [bn, bd] = m[r][k];
        const n = an * bd * fd - bn * fn * ad;
        const d = ad * bd * fd;
        return n === 0n ? [0n, 1n] : [n, d];
      });
    }
    r++;
  }
  return r;
}

/** The hidden cells an attacker recovers exactly from the published table: every line total is a sum. */
export function recoverableCells(lines: readonly LineEquation[], hidden: readonly boolean[]): number[] {
  const unknowns = hidden.flatMap((h, i) => (h ? [i] : []));
  const equations = lines
    .map((line) => unknowns.map((u) => (line.cells.includes(u) ? 1n : 0n) - (line.total === u ? 1n : 0n)))
    .filter((row) => row.some((v) => v !== 0n));
  const base = rank(equations);
  return unknowns.filter(
    (_unknown, i) => rank([...equations, unknowns.map((_, k) => (k === i ? 1n : 0n))]) === base,
  );
}
