import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type { EpisodeOfCare } from '@medplum/fhirtypes';
import Database from 'better-sqlite3';
import { EmbeddedStore } from '../../src/store/embedded';

/**
 * The embedded store bounds a date window's scan by the widest value a parameter has had (idx_date_width):
 * a value starting long before the window must still be found, also in a store written before the width
 * was kept (schema 2), whose widths are taken from its index when it is opened.
 */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const episode = (start: string, end?: string): EpisodeOfCare => ({
  resourceType: 'EpisodeOfCare',
  status: 'finished',
  patient: { reference: 'Patient/window-test' },
  period: end === undefined ? { start } : { start, end },
});

async function inWindow(store: EmbeddedStore): Promise<string[]> {
  const request = parseSearchRequest<EpisodeOfCare>('EpisodeOfCare?date=ge2024-03&date=le2024-04&_count=100');
  return (await store.search(request)).matches.map((e) => e.period?.start as string).sort();
}

test('a window finds a value that starts long before it, however many narrow ones there are', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'norpain-window-'));
  dirs.push(dir);
  const file = join(dir, 'fhir-store.sqlite');
  let store = EmbeddedStore.open(file);
  for (let month = 1; month <= 12; month++) {
    const m = String(month).padStart(2, '0');
    await store.create(episode(`2024-${m}-01`, `2024-${m}-10`));
  }
  await store.create(episode('1999-06-01', '2030-01-01')); // wider than all others
  await store.create(episode('2001-02-03')); // still open: reaches every later window
  await store.create(episode('1990-01-01', '1990-02-01')); // long before, and over
  const expected = ['1999-06-01', '2001-02-03', '2024-03-01', '2024-04-01'];
  expect(await inWindow(store)).toEqual(expected);
  await store.close();

  // As a store written before schema 3: no widths kept. Opening it takes them from the index, so that a
  // narrow value written afterwards does not set the width.
  const db = new Database(file);
  db.exec('DELETE FROM idx_date_width');
  db.pragma('user_version = 2');
  db.close();
  store = EmbeddedStore.open(file);
  await store.create(episode('2024-03-05', '2024-03-06'));
  expect(await inWindow(store)).toEqual([...expected, '2024-03-05'].sort());
  await store.close();
});
