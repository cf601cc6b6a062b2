import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/** One row of the example table: person (project id), sex, age band ("40-49"), NRS at baseline and 12 months. */
export type PersonRow = [string, string | null, string | null, number | null, number | null];

/** Runs example_table.py (Python's duckdb) on a folder of exported NDJSON files. */
export async function runDuckDb(folder: string): Promise<PersonRow[]> {
  const { stdout } = await promisify(execFile)(
    'python3',
    [path.join(__dirname, 'example_table.py'), folder],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return JSON.parse(stdout) as PersonRow[];
}
