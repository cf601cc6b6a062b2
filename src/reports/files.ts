import path from 'node:path';

/** Where a report is written: annual-YYYY.ext (national, the one published), annual-YYYY-RESH.ext (a unit's). */
export function annualReportFile(
  dir: string,
  year: number,
  ext: 'html' | 'csv' | 'pdf',
  unit?: string,
): string {
  return path.join(dir, `annual-${year}${unit === undefined ? '' : `-${unit}`}.${ext}`);
}
