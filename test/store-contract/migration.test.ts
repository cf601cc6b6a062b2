import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type { QuestionnaireResponse } from '@medplum/fhirtypes';
import Database from 'better-sqlite3';
import { EmbeddedStore } from '../../src/store/embedded';

/**
 * A store file written by the schema-3 store (fixtures/store-schema-3.sqlite, written by the embedded
 * store of commit e2854e2) is migrated when opened: its search indexes are rebuilt as schema 4 has them,
 * and it answers the same searches as before. What the file holds, for n = 0…59:
 *   Organization/org-{0,1,2}; Patient/pat-n (pseudonym 1-old{n}, female when n is odd, born 1940 + n);
 *   EpisodeOfCare/eoc-n at Organization/org-{n % 3}, from {2022 + n % 3}-{1 + n % 12}-10, one year;
 *   QuestionnaireResponse/qr-n (baseline 1.0.0) of pat-n, authored on the episode's first day;
 *   then pat-1 updated to male (a second version) and eoc-2 deleted.
 */
const PSEUDONYM = 'https://norpain.no/fhir/sid/registry-pseudonym';
const BASELINE = 'https://norpain.no/fhir/Questionnaire/norpain-baseline';
const ns = Array.from({ length: 60 }, (_, n) => n);
const year = (n: number): number => 2022 + (n % 3);
const month = (n: number): number => 1 + (n % 12);

let dir: string;
let file: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'norpain-migrate-'));
  file = EmbeddedStore.defaultFile(dir);
  copyFileSync(join(__dirname, 'fixtures', 'store-schema-3.sqlite'), file);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function indexColumns(db: Database.Database, index: string): string[] {
  return (db.pragma(`index_info(${index})`) as { name: string }[]).map((c) => c.name);
}

test('a schema-3 store file is migrated to schema 4 and answers the same searches', async () => {
  const before = new Database(file, { readonly: true });
  expect(before.pragma('user_version', { simple: true })).toBe(3);
  expect(indexColumns(before, 'idx_reference_search')).toEqual([
    'rtype',
    'param',
    'target_type',
    'target_id',
  ]);
  before.close();

  const store = EmbeddedStore.open(file);
  const ids = async (query: string): Promise<string[]> =>
    (await store.search(parseSearchRequest(query))).matches.map((r) => r.id as string);
  const total = async (query: string): Promise<number | undefined> =>
    (await store.search(parseSearchRequest(query))).total;

  expect(await ids('EpisodeOfCare?organization=Organization/org-1&_count=100')).toEqual(
    ns.filter((n) => n % 3 === 1).map((n) => `eoc-${n}`),
  );
  expect(await total('EpisodeOfCare?organization=Organization/org-2&_total=accurate')).toBe(19); // eoc-2 deleted
  expect(
    await ids(
      `QuestionnaireResponse?questionnaire=${BASELINE}&authored=ge2023-01&authored=lt2023-07&_count=100`,
    ),
  ).toEqual(ns.filter((n) => year(n) === 2023 && month(n) <= 6).map((n) => `qr-${n}`));
  expect(await ids(`Patient?identifier=${PSEUDONYM}|1-old7`)).toEqual(['pat-7']);
  expect(await ids(`QuestionnaireResponse?subject:Patient.identifier=${PSEUDONYM}|1-old5`)).toEqual(['qr-5']);
  expect(await total('Patient?gender=female&_summary=count')).toBe(29); // pat-1 is male since its update
  expect(await ids('Patient?birthdate=ge1990&_sort=-birthdate&_count=3')).toEqual([
    'pat-59',
    'pat-58',
    'pat-57',
  ]);
  // A period of one year from 2024 reaches into 2025; those from 2023 end before it (eoc-2 is deleted).
  expect(await ids('EpisodeOfCare?date=ge2025-01-01&_count=100')).toEqual(
    ns.filter((n) => year(n) === 2024 && n !== 2).map((n) => `eoc-${n}`),
  );

  // Written after the migration, found through the new indexes.
  const { resource } = await store.create<QuestionnaireResponse>({
    resourceType: 'QuestionnaireResponse',
    status: 'completed',
    questionnaire: `${BASELINE}|1.0.0`,
    subject: { reference: 'Patient/pat-3' },
    authored: '2023-04-02T10:00:00+01:00',
  });
  expect(await ids(`QuestionnaireResponse?subject=Patient/pat-3&_count=10`)).toEqual(['qr-3', resource.id]);
  await store.close();

  const after = new Database(file, { readonly: true });
  expect(after.pragma('user_version', { simple: true })).toBe(4);
  expect(indexColumns(after, 'idx_reference_search')).toEqual([
    'rtype',
    'param',
    'target_type',
    'target_id',
    'res',
  ]);
  expect(indexColumns(after, 'idx_date_res')).toEqual(['res', 'param', 'lo', 'hi']);
  after.close();
});
