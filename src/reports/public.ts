import fs from 'node:fs';
import type { Request, Response } from 'express';
import { errors } from '../fhir/outcomes';
import { annualReportFile } from './files';

/**
 * GET /public/annual/{year} (HTML) and /public/annual/{year}.csv: the published annual report, without a
 * token. Only the files `norpain report` wrote for the whole registry are served (never a unit's own
 * report, never the store), with the date they were made (Last-Modified, and in the page). A year with
 * no published report is a 404 OperationOutcome.
 */
export function publicAnnualReport(reportsDir: string) {
  return (req: Request, res: Response): void => {
    const match = /^(\d{4})(\.csv|\.html)?$/.exec(String(req.params.year));
    const ext = match?.[2] === '.csv' ? 'csv' : 'html';
    const file = match === null ? undefined : annualReportFile(reportsDir, Number(match[1]), ext);
    if (file === undefined || !fs.existsSync(file)) {
      throw errors.notFound(
        'No annual report is published for that year; published years are at /public/annual/YYYY.',
      );
    }
    const made = fs.statSync(file).mtime;
    res.set({
      'Content-Type': ext === 'csv' ? 'text/csv; charset=utf-8' : 'text/html; charset=utf-8',
      'Last-Modified': made.toUTCString(),
      // The page is self-contained: its own styles and inline SVG, nothing fetched, no script.
      'Content-Security-Policy':
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
      'Cache-Control': 'public, max-age=3600',
    });
    res.send(fs.readFileSync(file));
  };
}
