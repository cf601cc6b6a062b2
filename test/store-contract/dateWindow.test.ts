import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type { Condition, EpisodeOfCare } from '@medplum/fhirtypes';
import Database from 'better-sqlite3';
import { EmbeddedStore } from '../../src/store/embedded';

/**
 * Query plans of the embedded store that researcher searches rely on (issue 13): a date window's scan is
 * bounded by the widest value a parameter has had (idx_date_width), so a value starting long before the
 * window must still be found, also in a store written before the width was kept (schema 2); and pages of a
 * search whose every filter matches many (more than the store counts to choose the filter it drives from).
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
  const file = EmbeddedStore.defaultFile(dir);
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

test('the pages of a search whose every filter matches many are its matches in storage order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'norpain-walk-'));
  dirs.push(dir);
  const store = EmbeddedStore.open(EmbeddedStore.defaultFile(dir));
  const written: { id: string; code: string; day: number }[] = [];
  store.immediate(() => {
    for (let i = 0; i < 4500; i++) {
      const code = i % 3 === 0 ? 'M54.5' : 'M79.7';
      const day = 1 + (i % 28);
      const { resource } = store.createSync<Condition>({
        resourceType: 'Condition',
        subject: { reference: 'Patient/walk-test' },
        code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code }] },
        recordedDate: `2024-02-${String(day).padStart(2, '0')}`,
      });
      written.push({ id: resource.id as string, code, day });
    }
  });
  const wanted = written.filter((c) => c.code === 'M79.7' && c.day >= 3 && c.day <= 27).map((c) => c.id);
  const query = (offset: number) =>
    `Condition?code=urn:oid:2.16.578.1.12.4.1.1.7110|M79.7&recorded-date=ge2024-02-03&recorded-date=le2024-02-27&_count=25&_offset=${offset}&_total=accurate`;
  for (const offset of [0, 25, 2000]) {
    const result = await store.search(parseSearchRequest<Condition>(query(offset)));
    expect(result.matches.map((c) => c.id)).toEqual(wanted.slice(offset, offset + 25));
    expect(result.total).toBe(wanted.length);
  }
  await store.close();
});
