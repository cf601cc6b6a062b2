import fs from 'node:fs';
import path from 'node:path';

/**
 * What `norpain coverage` leaves for the annual report (DATA_DIR/reports/coverage-YYYY.json): aggregate
 * counts per unit and nationally, no person. The national counts are linked across units (a person
 * registered at one unit and seen by NPR at another is "both" nationally), so they are not the sum of
 * the units' and are published as their own table.
 */
export interface CoverageCounts {
  nprOnly: number;
  registryOnly: number;
  both: number;
}

export interface Coverage {
  units: Record<string, CoverageCounts>;
  national: CoverageCounts;
}

function coverageFile(dataDir: string, year: number): string {
  return path.join(dataDir, 'reports', `coverage-${year}.json`);
}

function counts(value: unknown): CoverageCounts | undefined {
  const v = value as Partial<CoverageCounts> | undefined;
  const ok = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0;
  return v && ok(v.nprOnly) && ok(v.registryOnly) && ok(v.both)
    ? { nprOnly: v.nprOnly as number, registryOnly: v.registryOnly as number, both: v.both as number }
    : undefined;
}

/** The year's coverage, or undefined when it has not been measured (no file). A malformed file throws. */
export function readCoverage(dataDir: string, year: number): Coverage | undefined {
  const file = coverageFile(dataDir, year);
  if (!fs.existsSync(file)) return undefined;
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    units?: Record<string, unknown>;
    national?: unknown;
  };
  const national = counts(json.national);
  const units = Object.entries(json.units ?? {}).map(([resh, c]) => [resh, counts(c)] as const);
  if (national === undefined || units.some(([, c]) => c === undefined)) {
    throw new Error(`${file} is not a coverage file of norpain coverage (counts per unit and national)`);
  }
  return { national, units: Object.fromEntries(units) as Record<string, CoverageCounts> };
}
