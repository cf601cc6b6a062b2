import { randomUUID } from 'node:crypto';
import { Operator } from '@medplum/core';
import type { Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import type { FhirStore } from '../../src/store/FhirStore';
import { scanReferences, scanResources, scanStored } from '../../src/store/scan';
import { temporaryEmbeddedStore } from '../helpers/embeddedStore';

/**
 * The one stream every whole-registry reader uses (src/store/scan.ts) over the embedded store's keyset
 * scan: with more rows than one page, and writes going on between the pages as they do in a server,
 * every resource that matches from before the read to after it comes exactly once, as its page found it;
 * what was deleted before its page was read does not come.
 */
const PAGE_ROWS = 200; // EmbeddedStore's scan page
const store = temporaryEmbeddedStore('norpain-scan-');

async function patients(system: string, n: number, from = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < from + n; i++) {
    const { resource } = await store().create<Patient>({
      resourceType: 'Patient',
      identifier: [{ system, value: String(i) }],
      gender: 'female',
    });
    ids.push(resource.id as string);
  }
  return ids;
}

test('every matching resource exactly once while resources are created, updated and deleted', async () => {
  const system = `https://norpain.no/fhir/sid/scan-${randomUUID()}`;
  const before = await patients(system, PAGE_ROWS * 2 + 57);
  // Others of the type that the filter leaves out, between and after them.
  await patients(`${system}-other`, 30);
  const seen = new Map<string, Patient[]>();
  let written = false;
  const updated = before[PAGE_ROWS + 10];
  const deleted = before[PAGE_ROWS + 20];
  let created: string[] = [];
  for await (const patient of scanResources<Patient>(store(), `Patient?identifier=${system}|`)) {
    seen.set(patient.id as string, [...(seen.get(patient.id as string) ?? []), patient]);
    if (!written && seen.size === 5) {
      // While the first page is being read: the writes of other requests.
      written = true;
      const current = await store().read<Patient>('Patient', updated);
      await store().update<Patient>({ ...current, id: updated, gender: 'male' });
      await store().delete('Patient', deleted);
      created = await patients(system, 3, 10_000);
      await patients(`${system}-other`, 3);
    }
  }
  expect(written).toBe(true);
  expect([...seen.values()].filter((versions) => versions.length > 1)).toEqual([]);
  const expected = [...before.filter((id) => id !== deleted), ...created];
  expect([...seen.keys()].sort()).toEqual(expected.sort());
  expect(seen.get(updated)?.[0]).toMatchObject({ gender: 'male', meta: { versionId: '2' } });
});

test("the stored text's bytes are what a read returns; nothing matched, nothing comes", async () => {
  const system = `https://norpain.no/fhir/sid/scan-${randomUUID()}`;
  // A name outside ASCII: the bytes are UTF-8, not one byte a character.
  const [id] = await patients(system, 1);
  await store().update({
    ...(await store().read<Patient>('Patient', id)),
    id,
    name: [{ family: 'Ødegård' }],
  });
  const items: (Patient | Buffer)[] = [];
  for await (const item of scanStored(store(), `Patient?identifier=${system}|`))
    items.push(item as Patient | Buffer);
  expect(items).toHaveLength(1);
  expect(Buffer.isBuffer(items[0])).toBe(true);
  expect(JSON.parse((items[0] as Buffer).toString('utf8'))).toEqual(await store().read('Patient', id));
  const none: unknown[] = [];
  for await (const item of scanStored(store(), `Patient?identifier=${system}-none|`)) none.push(item);
  expect(none).toEqual([]);
});

test('the targets of a reference parameter of every match: from the index as from the resources', async () => {
  const questionnaire = `https://norpain.no/fhir/Questionnaire/scan-${randomUUID()}`;
  const [a, b, c] = await patients(`https://norpain.no/fhir/sid/scan-${randomUUID()}`, 3);
  const answer = (subject?: string): QuestionnaireResponse => ({
    resourceType: 'QuestionnaireResponse',
    questionnaire,
    status: 'completed',
    ...(subject === undefined ? {} : { subject: { reference: subject } }),
  });
  const expected: string[] = [];
  // More matches than a page, a page's last ones among them without a subject.
  for (let i = 0; i < PAGE_ROWS + 5; i++) {
    const subject = i >= PAGE_ROWS - 3 && i < PAGE_ROWS ? undefined : `Patient/${[a, b, c][i % 3]}`;
    await store().create(answer(subject));
    if (subject !== undefined) expected.push(subject);
  }
  await store().create({ ...answer(`Patient/${a}`), questionnaire: `${questionnaire}-other` });
  const targets = async (from: FhirStore) => {
    const out: string[] = [];
    const matches = {
      resourceType: 'QuestionnaireResponse' as const,
      filters: [{ code: 'questionnaire', operator: Operator.EQUALS, value: questionnaire }],
    };
    for await (const target of scanReferences(from, matches, 'subject')) out.push(target);
    return out.sort();
  };
  // The same store without its index read: what a store without scanReferences (HAPI) is read with.
  const withoutIndex: FhirStore = Object.create(store(), { scanReferences: { value: undefined } });
  expect(await targets(store())).toEqual(expected.sort());
  expect(await targets(withoutIndex)).toEqual(expected);
});
