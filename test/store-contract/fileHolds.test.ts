import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileHolds, fileHoldsAsync, filePagesHolding } from '../../src/store/fileHolds';

/**
 * The byte scans the erasure trusts to say that no copy of a person is left in a file, and where one
 * is: a text found anywhere, across the scan's 1 MiB chunks and across pages, by the synchronous and the
 * asynchronous reader alike, and the pages it stands on numbered as SQLite numbers them (from 1).
 */
const dir = mkdtempSync(join(tmpdir(), 'norpain-file-holds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PAGE = 4096;
const CHUNK = 1 << 20;
const ID = '0e0b1b9c-aaaa-4bbb-8ccc-123456789abc';

/** A file of zeros with `text` written at each offset. */
function fileWith(name: string, size: number, at: number[], text = ID): string {
  const bytes = Buffer.alloc(size);
  for (const offset of at) bytes.write(text, offset, 'utf8');
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

test('a text inside a page, across two pages and across two chunks is found, on the pages it stands on', async () => {
  const inside = 5 * PAGE + 100; // page 6
  const acrossPages = 9 * PAGE - 10; // pages 9 and 10
  const acrossChunks = CHUNK - 7; // pages 256 and 257
  const file = fileWith('three', 2 * CHUNK + 123, [inside, acrossPages, acrossChunks]);
  expect(await filePagesHolding(file, [ID], PAGE)).toEqual([6, 9, 10, 256, 257]);
  expect(fileHolds([file], [ID])).toBe(true);
  expect(await fileHoldsAsync([file], [ID])).toBe(true);
});

test('each of several texts is found; a file without them, or absent, holds nothing', async () => {
  const other = '1-PSEUDONYMABCDEFGHIJKLMNOPQRSTUVW';
  const file = fileWith('other', 3 * PAGE, [2 * PAGE + 1], other);
  expect(await filePagesHolding(file, [ID, other], PAGE)).toEqual([3]);
  const empty = fileWith('empty', CHUNK + 5, []);
  expect(await filePagesHolding(empty, [ID], PAGE)).toEqual([]);
  expect(fileHolds([empty, join(dir, 'absent')], [ID])).toBe(false);
  expect(await fileHoldsAsync([empty, join(dir, 'absent')], [ID])).toBe(false);
  expect(await fileHoldsAsync([empty, file], [ID, other])).toBe(true);
});
