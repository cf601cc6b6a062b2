import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NdjsonWriter } from '../../src/export/files';

/**
 * The export's file writer on a real folder: lines given as objects, JSON text and UTF-8 bytes come out
 * byte for byte, in order, split into files before one would pass the limit (counted in bytes, not
 * characters), and a line longer than the writer's chunk is written whole.
 */
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-ndjson-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function lines(name: string): string[] {
  return fs.readFileSync(path.join(dir, name), 'utf8').split('\n').slice(0, -1);
}

test('objects, texts and bytes are written as one line each, in order, per type', async () => {
  const writer = new NdjsonWriter(dir, 1024 * 1024);
  const patient = { resourceType: 'Patient', id: 'a', name: [{ family: 'Ødegård' }] };
  await writer.write('Patient', patient);
  await writer.write('Patient', JSON.stringify({ ...patient, id: 'b' }));
  await writer.write('Patient', Buffer.from(JSON.stringify({ ...patient, id: 'c' })));
  await writer.write('Condition', { resourceType: 'Condition', id: 'd' });
  const files = await writer.finish();
  expect(files).toEqual([
    { type: 'Patient', name: 'Patient-1.ndjson', count: 3 },
    { type: 'Condition', name: 'Condition-1.ndjson', count: 1 },
  ]);
  expect(lines('Patient-1.ndjson').map((l) => JSON.parse(l) as unknown)).toEqual([
    patient,
    { ...patient, id: 'b' },
    { ...patient, id: 'c' },
  ]);
  expect(lines('Condition-1.ndjson')).toEqual(['{"resourceType":"Condition","id":"d"}']);
});

test('a file ends before it would pass the limit in bytes, with lines of two-byte characters', async () => {
  // 'ø' is two bytes in UTF-8: 100 characters, 150 bytes, 151 with the newline.
  const line = 'ø'.repeat(50) + 'x'.repeat(50);
  const writer = new NdjsonWriter(dir, 151 * 3);
  for (let i = 0; i < 7; i++) await writer.write('Observation', i % 2 === 0 ? line : Buffer.from(line));
  const files = await writer.finish();
  expect(files.map((f) => f.count)).toEqual([3, 3, 1]);
  for (const file of files) {
    expect(fs.statSync(path.join(dir, file.name)).size).toBe(151 * file.count);
    expect(lines(file.name)).toEqual(Array(file.count).fill(line));
  }
});

test('a line longer than a chunk, and one longer than the limit, are written whole', async () => {
  const long = JSON.stringify({ resourceType: 'Binary', data: 'å'.repeat(400_000) });
  const writer = new NdjsonWriter(dir, 100_000);
  await writer.write('Binary', '{"id":"before"}');
  await writer.write('Binary', long);
  await writer.write('Binary', Buffer.from(long));
  await writer.write('Binary', '{"id":"after"}');
  const files = await writer.finish();
  expect(files.map((f) => f.count)).toEqual([1, 1, 1, 1]);
  expect(files.flatMap((f) => lines(f.name))).toEqual(['{"id":"before"}', long, long, '{"id":"after"}']);
});

test("a job stopped before its file is open, its folder removed at once, ends quietly: the file's error is not the process's", async () => {
  const own = fs.mkdtempSync(path.join(dir, 'job-'));
  const writer = new NdjsonWriter(own, 1024);
  await writer.write('Patient', { resourceType: 'Patient', id: 'a' });
  writer.abort();
  fs.rmSync(own, { recursive: true, force: true });
  // The stream opens its file on the thread pool; its failure comes after this.
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(fs.existsSync(own)).toBe(false);
});

test('a file that cannot be written fails the job at its next step', async () => {
  const own = fs.mkdtempSync(path.join(dir, 'job-'));
  const writer = new NdjsonWriter(own, 1024 * 1024);
  fs.writeFileSync(path.join(own, 'Patient-1.ndjson'), ''); // taken: the writer opens with 'wx'
  await writer.write('Patient', { resourceType: 'Patient', id: 'a' });
  await expect(writer.finish()).rejects.toThrow(/EEXIST/);
});
