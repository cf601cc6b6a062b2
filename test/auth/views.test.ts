import type { Bundle, Resource } from '@medplum/fhirtypes';
import { UNIT_LABEL_SYSTEM } from '../../src/auth/unitLabel';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { call, idsIn, condition, people, submitPerson, UNIT_A, UNIT_B, type PersonData } from './fixtures';

/**
 * The view holds on every read path: a clinic never sees another unit's data and a portal never sees
 * another person's, also through _include, _revinclude, chained search, history, batch entries and the
 * resources a transaction or conditional create hands back. R is treated at both units (one shared
 * Patient); each unit's Conditions about R stay with that unit.
 */
let server: TestServer;
let clinicA: string;
let clinicB: string;
let admin: string;
let R: PersonData; // sent by A, then by B
let obsOfB: string; // B's Condition about R
let S: PersonData; // only at B

beforeAll(async () => {
  server = await startTestServer();
  const [r, s] = people(7001, 2);
  admin = await server.token('registry-admin');
  clinicA = await server.token('clinic', { org: UNIT_A });
  clinicB = await server.token('clinic', { org: UNIT_B });
  R = await submitPerson(server, clinicA, r, UNIT_A);
  const atB = await submitPerson(server, clinicB, r, UNIT_B);
  expect(atB.patient).toBe(R.patient);
  obsOfB = atB.condition;
  S = await submitPerson(server, clinicB, s, UNIT_B);
}, 60_000);

afterAll(async () => {
  await server.stop();
});

test('a Patient sent by two units is labelled with both, and each unit sees it', async () => {
  const patient = await call(server, admin, 'GET', `Patient/${R.patient}`);
  const labels = (patient.body.meta?.security ?? [])
    .filter((c) => c.system === UNIT_LABEL_SYSTEM)
    .map((c) => c.code);
  expect(labels).toEqual([UNIT_A, UNIT_B]);
  expect((await call(server, clinicA, 'GET', `Patient/${R.patient}`)).status).toBe(200);
  expect((await call(server, clinicB, 'GET', `Patient/${R.patient}`)).status).toBe(200);
  expect((await call(server, clinicA, 'GET', `Patient/${S.patient}`)).status).toBe(404);
});

test('_revinclude from a shared Patient brings only the own unit’s resources', async () => {
  const reply = await call<Bundle>(
    server,
    clinicA,
    'GET',
    `Patient?_id=${R.patient}&_revinclude=Condition:subject`,
  );
  expect(reply.status).toBe(200);
  expect(idsIn(reply.body, 'Condition')).toEqual([`Condition/${R.condition}`]);
  const asAdmin = await call<Bundle>(
    server,
    admin,
    'GET',
    `Patient?_id=${R.patient}&_revinclude=Condition:subject`,
  );
  expect(idsIn(asAdmin.body, 'Condition').sort()).toEqual(
    [`Condition/${R.condition}`, `Condition/${obsOfB}`].sort(),
  );
});

test('_include does not bring another unit’s resources', async () => {
  // B's episode of S points at S's Patient, which A cannot see; A searching B's episode finds nothing.
  const reply = await call<Bundle>(
    server,
    clinicA,
    'GET',
    `EpisodeOfCare?_include=EpisodeOfCare:patient&_count=100`,
  );
  expect(reply.status).toBe(200);
  const found = idsIn(reply.body);
  expect(found).toContain(`EpisodeOfCare/${R.episode}`);
  expect(found).not.toContain(`EpisodeOfCare/${S.episode}`);
  expect(found).not.toContain(`Patient/${S.patient}`);
  const byB = await call<Bundle>(
    server,
    clinicB,
    'GET',
    `Condition?_id=${obsOfB}&_include=Condition:subject`,
  );
  expect(idsIn(byB.body)).toEqual([`Condition/${obsOfB}`, `Patient/${R.patient}`]);
});

test('chained search matches only within the view', async () => {
  const reply = await call<Bundle>(
    server,
    clinicA,
    'GET',
    `Condition?subject:Patient.birthdate=1980&_count=100`,
  );
  expect(reply.status).toBe(200);
  const found = idsIn(reply.body, 'Condition');
  expect(found).toContain(`Condition/${R.condition}`);
  expect(found).not.toContain(`Condition/${obsOfB}`);
  expect(found).not.toContain(`Condition/${S.condition}`);
});

test('history: type history shows own versions only; another unit’s instance history is 404', async () => {
  const reply = await call<Bundle>(server, clinicA, 'GET', 'Condition/_history?_count=100');
  expect(reply.status).toBe(200);
  const ids = (reply.body.entry ?? []).map((e) => e.fullUrl?.split('/').slice(-2).join('/'));
  expect(ids).toContain(`Condition/${R.condition}`);
  expect(ids).not.toContain(`Condition/${obsOfB}`);
  expect(reply.body.total).toBe(ids.length);
  expect((await call(server, clinicA, 'GET', `Condition/${obsOfB}/_history`)).status).toBe(404);
  expect((await call(server, clinicA, 'GET', `Condition/${obsOfB}/_history/1`)).status).toBe(404);
});

test('a batch read of another unit’s resource is a 404 entry', async () => {
  const reply = await call<Bundle>(server, clinicA, 'POST', '', {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [
      { request: { method: 'GET', url: `Condition/${obsOfB}` } },
      { request: { method: 'GET', url: `Condition/${R.condition}` } },
    ],
  });
  expect(reply.status).toBe(200);
  expect(reply.body.entry?.map((e) => e.response?.status)).toEqual(['404 Not Found', '200 OK']);
});

test('conditional creates match only within the view, so no transaction hands back another unit’s data', async () => {
  const identifier = { system: 'urn:norpain:test-obs', value: 'shared-key' };
  const atB = await call(server, clinicB, 'POST', 'Condition', {
    ...condition({ reference: `Patient/${R.patient}` }, '2024-03-01'),
    identifier: [identifier],
  });
  expect(atB.status).toBe(201);
  const single = await call(
    server,
    clinicA,
    'POST',
    'Condition',
    { ...condition({ reference: `Patient/${R.patient}` }, '2024-03-02'), identifier: [identifier] },
    {
      'if-none-exist': 'identifier=urn:norpain:test-obs|shared-key',
    },
  );
  expect(single.status).toBe(201);
  expect(single.body.id).not.toBe(atB.body.id);
  const tx = await call<Bundle>(server, clinicA, 'POST', '', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:5c1d1a34-0000-4000-8000-000000000001',
        resource: {
          ...condition({ reference: `Patient/${R.patient}` }, '2024-03-03'),
          identifier: [identifier],
        },
        request: {
          method: 'POST',
          url: 'Condition',
          ifNoneExist: 'identifier=urn:norpain:test-obs|shared-key',
        },
      },
    ],
  });
  expect(tx.status).toBe(200);
  expect(tx.text).not.toContain(atB.body.id as string);
  expect(tx.text).not.toContain('2024-03-01');
});

test('a client cannot forge a unit label', async () => {
  const forged: Resource = {
    ...condition({ reference: `Patient/${R.patient}` }, '2024-03-04'),
    meta: { security: [{ system: UNIT_LABEL_SYSTEM, code: UNIT_B }] },
  };
  const created = await call(server, clinicA, 'POST', 'Condition', forged);
  expect(created.status).toBe(201);
  expect(created.body.meta?.security).toEqual([{ system: UNIT_LABEL_SYSTEM, code: UNIT_A }]);
  expect((await call(server, clinicB, 'GET', `Condition/${created.body.id}`)).status).toBe(404);
  // Sending back another unit's label on an update changes nothing either.
  const updated = await call(server, clinicA, 'PUT', `Condition/${created.body.id}`, {
    ...created.body,
    meta: forged.meta,
  });
  expect(updated.status).toBe(200);
  expect(updated.body.meta?.security).toEqual([{ system: UNIT_LABEL_SYSTEM, code: UNIT_A }]);
});

test('a portal token sees its own person only, also through includes and $everything', async () => {
  const portal = await server.token('portal', { pid: R.fnr });
  const own = await call<Bundle>(server, portal, 'GET', 'Condition?_include=Condition:subject&_count=100');
  expect(own.status).toBe(200);
  const found = idsIn(own.body);
  expect(found).toEqual(
    expect.arrayContaining([`Condition/${R.condition}`, `Condition/${obsOfB}`, `Patient/${R.patient}`]),
  );
  expect(found).not.toContain(`Condition/${S.condition}`);
  const asked = await call<Bundle>(server, portal, 'GET', `Condition?subject=Patient/${S.patient}`);
  expect(idsIn(asked.body)).toEqual([]);
  const everything = await call<Bundle>(server, portal, 'GET', 'Patient/$everything');
  expect(everything.status).toBe(200);
  expect(idsIn(everything.body)).not.toContain(`Patient/${S.patient}`);
  const stranger = await server.token('portal', { pid: people(7002, 1)[0] });
  const none = await call<Bundle>(server, stranger, 'GET', 'Condition?_count=100');
  expect([none.status, idsIn(none.body)]).toEqual([200, []]);
});
