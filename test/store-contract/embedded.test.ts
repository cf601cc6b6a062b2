import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type { Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import { EmbeddedStore, normaliseForSearch } from '../../src/store/embedded';
import { dateRange, numberRange, periodRange, MAX_TIME } from '../../src/store/embedded/ranges';
import { describeStoreContract } from './contract';

const dirs: string[] = [];
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'norpain-store-'));
  dirs.push(dir);
  return join(dir, 'nested', 'folder', 'fhir.db');
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describeStoreContract('embedded', async () => EmbeddedStore.open(tempFile()));

describe('normaliseForSearch (Norwegian-aware)', () => {
  test.each([
    ['ÅSEN', 'åsen'],
    ['Aasen', 'åsen'],
    ['Mæland', 'mæland'],
    ['Maeland', 'mæland'],
    ['Øren', 'øren'],
    ['Oeren', 'øren'],
    ['Bélanger', 'belanger'],
    ['Müller', 'muller'],
    ['Ñúñez', 'nunez'],
    ['Ärlig Öberg', 'ærlig øberg'],
    ['Straße', 'strasse'],
    ['  Kari   Nordmann ', 'kari nordmann'],
    ['A\u030Asen', 'åsen'], // å written as a + combining ring
  ])('%s → %s', (input, expected) => {
    expect(normaliseForSearch(input)).toBe(expected);
  });

  test('æ, ø, å are letters of their own, not a or o', () => {
    expect(normaliseForSearch('Å')).not.toBe(normaliseForSearch('A'));
    expect(normaliseForSearch('Ø')).not.toBe(normaliseForSearch('O'));
    expect(normaliseForSearch('Æ')).not.toBe(normaliseForSearch('A'));
  });

  test('is idempotent', () => {
    for (const s of ['Aasen', 'Øystein Hoel', 'Bélanger', 'aaa', 'Straße']) {
      expect(normaliseForSearch(normaliseForSearch(s))).toBe(normaliseForSearch(s));
    }
  });
});

describe('search ranges', () => {
  const utc = (s: string): number => Date.parse(s);
  test('partial dates denote their whole period', () => {
    expect(dateRange('2024')).toEqual({
      lo: utc('2024-01-01T00:00:00Z'),
      hi: utc('2024-12-31T23:59:59.999Z'),
    });
    expect(dateRange('2024-02')).toEqual({
      lo: utc('2024-02-01T00:00:00Z'),
      hi: utc('2024-02-29T23:59:59.999Z'),
    });
    expect(dateRange('2024-02-15')).toEqual({
      lo: utc('2024-02-15T00:00:00Z'),
      hi: utc('2024-02-15T23:59:59.999Z'),
    });
    expect(dateRange('2024-02-15T10:00+01:00')).toEqual({
      lo: utc('2024-02-15T09:00:00Z'),
      hi: utc('2024-02-15T09:00:59.999Z'),
    });
    expect(dateRange('2024-02-15T10:00:05.123Z')).toEqual({
      lo: utc('2024-02-15T10:00:05.123Z'),
      hi: utc('2024-02-15T10:00:05.123Z'),
    });
    expect(dateRange('15.02.2024')).toBeUndefined();
    expect(dateRange('2024-13')).toBeUndefined();
  });

  test('a Period without an end is open', () => {
    expect(periodRange({ start: '2024-01-01' })).toEqual({ lo: utc('2024-01-01T00:00:00Z'), hi: MAX_TIME });
    expect(periodRange({})).toBeUndefined();
  });

  test('numbers are ranges by their precision', () => {
    expect(numberRange('100')).toEqual({ lo: 99.5, hi: 100.5 });
    expect(numberRange('0.75')).toEqual({ lo: 0.745, hi: 0.755 });
    expect(numberRange('1e2')).toEqual({ lo: 50, hi: 150 });
    expect(numberRange('abc')).toBeUndefined();
  });
});

describe('EmbeddedStore specifics', () => {
  let store: EmbeddedStore;
  let file: string;
  const run = randomUUID().slice(0, 8);
  const SYSTEM = 'https://norpain.no/fhir/sid/registry-pseudonym';
  beforeAll(() => {
    file = tempFile();
    store = EmbeddedStore.open(file);
  });
  afterAll(async () => {
    await store.close();
  });
  const ids = async (q: string): Promise<string[]> =>
    (await store.search(parseSearchRequest(q))).matches.map((r) => r.id as string).sort();

  test('open creates the folders and the schema; WAL mode is on', () => {
    expect(existsSync(file)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(true);
  });

  test('Norwegian string search: old spellings, own letters, prefixes across the fold', async () => {
    const mk = async (family: string) =>
      (await store.create<Patient>({ resourceType: 'Patient', name: [{ family: `${family}${run}` }] }))
        .resource.id as string;
    // The run id is appended so the values are unique; searches use prefixes ending before it.
    const aasen = await mk('Aasen');
    const maeland = await mk('Mæland');
    const hoel = await mk('Høl');
    const asen = await mk('Asen');
    expect(await ids(`Patient?family=Åsen${run}`)).toEqual([aasen]);
    expect(await ids(`Patient?family=aasen${run}`)).toEqual([aasen]);
    expect(await ids(`Patient?family=Asen${run}`)).toEqual([asen]);
    expect(await ids(`Patient?family=Maeland${run}`)).toEqual([maeland]);
    expect(await ids(`Patient?family=Hoel${run}`)).toEqual([hoel]);
    expect(await ids(`Patient?family:contains=æland${run}`)).toEqual([maeland]);
    // "Ma" is a prefix of "Maeland" as written, though it is stored as "mæland".
    expect(await ids(`Patient?family=Ma&family:contains=${run}`)).toEqual([maeland]);
    expect(await ids(`Patient?family:exact=Aasen${run}`)).toEqual([aasen]);
    expect(await ids(`Patient?family:exact=Åsen${run}`)).toEqual([]);
  });

  test('unsupported modifiers and parameter types are 400', async () => {
    for (const q of [
      'Patient?name:text=x',
      'Patient?identifier:of-type=a|b|c',
      'Patient?gender:in=http://hl7.org/fhir/ValueSet/administrative-gender',
      'Patient?_has:Observation:patient:code=1234',
      'QuestionnaireResponse?subject.organization.name=x',
      'QuestionnaireResponse?subject:Patient.nonsense=x',
      'Patient?_sort=nonsense',
    ]) {
      await expect(store.search(parseSearchRequest(q))).rejects.toMatchObject({ status: 400 });
    }
    // @medplum/core's parser itself refuses composite parameters, so the request is built by hand.
    await expect(
      store.search({
        resourceType: 'Observation',
        filters: [{ code: 'code-value-quantity', operator: 'eq', value: 'http://loinc.org|72514-3$gt5' }],
      }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(store.search({ ...parseSearchRequest('Patient'), count: Number.NaN })).rejects.toMatchObject(
      {
        status: 400,
      },
    );
  });

  test('_sort puts resources without a value last, ascending and descending', async () => {
    const system = `https://norpain.no/fhir/sid/sort-${run}`;
    const mk = async (birthDate?: string) =>
      (
        await store.create<Patient>({
          resourceType: 'Patient',
          identifier: [{ system, value: randomUUID() }],
          birthDate,
        })
      ).resource.id as string;
    const none = await mk();
    const early = await mk('1950');
    const late = await mk('1990');
    const order = async (sort: string) =>
      (await store.search(parseSearchRequest(`Patient?identifier=${system}|&_sort=${sort}`))).matches.map(
        (m) => m.id,
      );
    expect(await order('birthdate')).toEqual([early, late, none]);
    expect(await order('-birthdate')).toEqual([late, early, none]);
  });

  test('_count is capped at 1000', async () => {
    const result = await store.search({ ...parseSearchRequest('Patient'), count: 5000 });
    expect(result.matches.length).toBeLessThanOrEqual(1000);
  });

  test('two stores on one file: ifMatch is checked inside the write transaction', async () => {
    const other = EmbeddedStore.open(file);
    try {
      const { resource } = await store.create<Patient>({ resourceType: 'Patient', gender: 'male' });
      const id = resource.id as string;
      await other.update<Patient>({ ...resource, id, gender: 'female' }, { ifMatch: '1' });
      await expect(
        store.update<Patient>({ ...resource, id, gender: 'other' }, { ifMatch: '1' }),
      ).rejects.toMatchObject({
        status: 412,
      });
      expect((await store.read<Patient>('Patient', id)).gender).toBe('female');
    } finally {
      await other.close();
    }
  });

  test('data survive closing and reopening the file', async () => {
    const reopenedFile = tempFile();
    const first = EmbeddedStore.open(reopenedFile);
    const { resource } = await first.create<Patient>({ resourceType: 'Patient', gender: 'male' });
    await first.update<Patient>({ ...resource, id: resource.id as string, gender: 'female' });
    await first.close();
    const second = EmbeddedStore.open(reopenedFile);
    const read = await second.read<Patient>('Patient', resource.id as string);
    expect(read.gender).toBe('female');
    expect(read.meta?.versionId).toBe('2');
    expect(await second.search(parseSearchRequest(`Patient?_id=${resource.id}&gender=female`))).toMatchObject(
      {
        matches: [{ id: resource.id }],
      },
    );
    await second.close();
    await expect(second.ping()).rejects.toMatchObject({ status: 503 });
  });

  test('after erasure no byte of the erased resources remains in the .db, -wal or -shm files', async () => {
    // A marker that occurs nowhere else: in an identifier (indexed), free text, and an earlier version.
    const marker = `ERASE-ME-${randomBytes(12).toString('hex')}`;
    const { resource: patient } = await store.create<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: SYSTEM, value: `1-${marker}` }],
      name: [{ family: marker }],
    });
    const patientId = patient.id as string;
    await store.update<Patient>({ ...patient, id: patientId, gender: 'other' });
    const qr: QuestionnaireResponse = {
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      subject: { reference: `Patient/${patientId}` },
      item: Array.from({ length: 60 }, (_, i) => ({
        linkId: `q${i}`,
        answer: [{ valueString: `${marker} svar ${i}` }],
      })),
    };
    const { resource: created } = await store.create(qr);
    await store.update({ ...created, id: created.id as string, status: 'amended' });
    // Unrelated data written before and after, so erased pages sit between live ones.
    await store.create<Patient>({ resourceType: 'Patient', name: [{ family: `Behold${run}` }] });

    const files = [file, `${file}-wal`, `${file}-shm`];
    const occurrences = (): number =>
      files
        .filter((f) => existsSync(f))
        .reduce((n, f) => n + countOccurrences(readFileSync(f), Buffer.from(marker, 'utf8')), 0);
    expect(occurrences()).toBeGreaterThan(0);

    const receipt = await store.erasePatientCompartment(patientId);
    expect(receipt).toEqual({
      erased: { Patient: 1, QuestionnaireResponse: 1 },
      versionsErased: 4,
      residual: 0,
    });
    expect(occurrences()).toBe(0);
    expect(countOccurrences(readFileSync(file), Buffer.from(patientId, 'utf8'))).toBe(0);
    // The store keeps working afterwards and the other data are there.
    expect(await ids(`Patient?family=Behold${run}`)).toHaveLength(1);
  });
});

function countOccurrences(haystack: Buffer, needle: Buffer): number {
  let count = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) {
    count++;
  }
  return count;
}
