import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Condition, OperationOutcome, Patient, Resource } from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { NORPAIN_PROFILES } from '../../src/validation/profiles';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * Two ways a person's data could slip past the dictionary (found by test/privacy): a `meta.profile` is a
 * URL the sender chooses, so only the NorPain profiles are kept; and a contained Patient is not stored, so
 * a resource naming its person that way would belong to no one (no reservation could find it): refused.
 */
const random = seededRandom(8123);
const person = syntheticNationalId('fnr', { random });
const PHONE = '47112358';
const NAME = 'Innholdslekt';
const ICD10 = 'urn:oid:2.16.578.1.12.4.1.1.7110';

let server: TestServer;
let clinic: string;

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic');
});

afterAll(async () => {
  await server?.stop();
});

async function call<T>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.baseUrl}/${url}`, {
    method,
    headers: { authorization: `Bearer ${clinic}`, 'content-type': 'application/fhir+json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Every byte the server wrote under DATA_DIR (store, WAL, vault, audit). */
function written(): string {
  const files = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const full = path.join(dir, e.name);
      return e.isDirectory() ? files(full) : [full];
    });
  return Buffer.concat(files(server.dataDir).map((f) => fs.readFileSync(f))).toString('latin1');
}

const subject = { identifier: { system: preferredSystem.fnr, value: person } };

test('meta.profile keeps the NorPain profile and drops any other URL, saying so', async () => {
  const other = `https://epr.example.org/StructureDefinition/${PHONE}`;
  const reply = await call<Patient>('POST', 'Patient', {
    resourceType: 'Patient',
    meta: { profile: [NORPAIN_PROFILES.Patient, other] },
    identifier: [{ system: preferredSystem.fnr, value: person }],
  });
  expect(reply.status).toBe(201);
  expect(reply.body.meta?.profile).toEqual([NORPAIN_PROFILES.Patient]);
  const outcome = await call<OperationOutcome>(
    'POST',
    'Condition',
    {
      resourceType: 'Condition',
      meta: { profile: [other] },
      subject,
      code: { coding: [{ system: ICD10, code: 'M54.5' }] },
    },
    { prefer: 'return=OperationOutcome' },
  );
  expect(outcome.status).toBe(201);
  expect(outcome.body.issue?.map((i) => i.expression?.[0])).toContain('Condition.meta.profile');
  expect(outcome.text).not.toContain(PHONE);
  expect(written()).not.toContain(PHONE);
});

test('a contained Patient is refused with 422 and nothing is written; other contained resources are not', async () => {
  const conditions = async () => (await call<Bundle>('GET', 'Condition?_count=100')).body.entry?.length ?? 0;
  const before = await conditions();
  const condition = (contained: Resource): Condition => ({
    resourceType: 'Condition',
    contained: [contained],
    subject: { reference: '#p' },
    code: { coding: [{ system: ICD10, code: 'M79.7' }] },
  });
  const refused = await call<OperationOutcome>(
    'POST',
    'Condition',
    condition({
      resourceType: 'Patient',
      id: 'p',
      identifier: [{ system: preferredSystem.fnr, value: person }],
      name: [{ family: NAME }],
    }),
  );
  expect(refused.status).toBe(422);
  expect(refused.body.issue?.[0].expression).toEqual(['Condition.contained[0]']);
  expect(refused.body.issue?.[0].details?.text).toMatch(/reference to their Patient/);
  expect(refused.text).not.toContain(person);
  expect(await conditions()).toBe(before);
  expect(written()).not.toContain(NAME);

  // A contained Practitioner names no person of the registry: not stored, the write accepted.
  const practitioner = await call<Condition>('POST', 'Condition', {
    ...condition({ resourceType: 'Practitioner', id: 'p', name: [{ family: NAME }] }),
    subject,
  });
  expect(practitioner.status).toBe(201);
  expect(practitioner.body.contained).toBeUndefined();
  expect(await conditions()).toBe(before + 1);
  expect(written()).not.toContain(NAME);
});

test('a code is kept only if it is a code of its system where the registry holds the system', async () => {
  const KOMMUNE = 'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle';
  const CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
  const sent = await call<OperationOutcome>(
    'POST',
    'Condition',
    {
      resourceType: 'Condition',
      subject,
      category: [{ coding: [{ system: CATEGORY, code: NAME }] }],
      verificationStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }],
      },
      code: { coding: [{ system: ICD10, code: 'M79.7' }] },
    },
    { prefer: 'return=OperationOutcome' },
  );
  expect(sent.status).toBe(201);
  const warning = sent.body.issue?.find((i) => i.expression?.[0] === 'Condition.category.coding');
  expect(warning?.details?.text).toMatch(/not a code of FHIR: condition category/);
  expect(sent.text).not.toContain(NAME);
  const stored = (await call<Bundle<Condition>>('GET', 'Condition?verification-status=confirmed&_count=100'))
    .body;
  const kept = stored.entry?.map((e) => e.resource as Condition) ?? [];
  expect(kept.length).toBeGreaterThan(0);
  expect(kept.every((c) => c.category === undefined)).toBe(true);
  expect(kept.some((c) => c.verificationStatus?.coding?.[0].code === 'confirmed')).toBe(true);

  // A municipality is four digits: a street written as one is not stored; a real number is.
  const address = (code: string) => ({
    resourceType: 'Patient',
    identifier: [{ system: preferredSystem.fnr, value: person }],
    address: [
      {
        extension: [
          {
            url: 'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode',
            valueCoding: { system: KOMMUNE, code },
          },
        ],
      },
    ],
  });
  const street = await call<Patient>('POST', 'Patient', address('Storgata 12'));
  expect(street.status).toBeLessThan(300);
  expect(street.text).not.toContain('Storgata');
  const real = await call<Patient>(
    'PUT',
    `Patient?identifier=${preferredSystem.fnr}|${person}`,
    address('5001'),
  );
  expect(real.status).toBeLessThan(300);
  expect(JSON.stringify(real.body.address)).toContain('5001');
  expect(written()).not.toContain(NAME);
  expect(written()).not.toContain('Storgata');
});

test('a chosen id of person data is refused and kept nowhere, the audit log included; definitions keep theirs', async () => {
  const chosen = `${NAME}-${PHONE}`;
  const refused = await call<OperationOutcome>('PUT', `Condition/${chosen}`, {
    resourceType: 'Condition',
    id: chosen,
    subject,
    code: { coding: [{ system: ICD10, code: 'M79.7' }] },
  });
  expect(refused.status).toBe(422);
  expect(refused.body.issue?.[0].details?.text).toMatch(/assigns the ids of Condition resources itself/);
  expect((await call('GET', `Condition/${chosen}`)).status).toBe(404);
  expect(written()).not.toContain(NAME);
  expect(written()).not.toContain(PHONE);

  // An id of the server's form is an update-as-create like any other.
  const uuid = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
  const created = await call<Condition>('PUT', `Condition/${uuid}`, {
    resourceType: 'Condition',
    id: uuid,
    subject,
    code: { coding: [{ system: ICD10, code: 'M79.7' }] },
  });
  expect(created.status).toBe(201);
  expect(created.body.id).toBe(uuid);
});
