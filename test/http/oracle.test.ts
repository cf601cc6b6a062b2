import http from 'node:http';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { UNIT_LABEL_SYSTEM } from '../../src/auth/unitLabel';
import { call, FNR_SYSTEM, people, submitPerson, UNIT_A, UNIT_B, type PersonData } from '../auth/fixtures';
import { reservation } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * No membership oracle (issue 11, DESIGN §3.6): what a clinic or the portal gets back for a national id
 * is the same, byte for byte, whether the person is unknown, reserved, or known only to another unit; a
 * Patient id outside the view reads as one that never existed; a clinic sees only its own unit label on a
 * shared person; links never reflect the Host header.
 */
let server: TestServer;
let admin: string;
let clinicA: string;
let clinicB: string;
let own: PersonData; // at A
let otherUnit: PersonData; // only at B
let shared: PersonData; // at A and B
let deletedAtB: PersonData; // only at B, its Patient deleted by B
let reservedNumber: string; // had data at B, then reserved
let unknownNumber: string; // never sent

const PLACEHOLDER = '00000000000';

beforeAll(async () => {
  server = await startTestServer();
  const [a, b, s, d, r, u] = people(11011, 6);
  unknownNumber = u;
  reservedNumber = r;
  admin = await server.token('registry-admin');
  clinicA = await server.token('clinic', { org: UNIT_A });
  clinicB = await server.token('clinic', { org: UNIT_B });
  own = await submitPerson(server, clinicA, a, UNIT_A);
  otherUnit = await submitPerson(server, clinicB, b, UNIT_B);
  shared = await submitPerson(server, clinicA, s, UNIT_A);
  expect((await submitPerson(server, clinicB, s, UNIT_B)).patient).toBe(shared.patient);
  deletedAtB = await submitPerson(server, clinicB, d, UNIT_B);
  for (const type of ['Condition', 'EpisodeOfCare'] as const) {
    const id = type === 'Condition' ? deletedAtB.condition : deletedAtB.episode;
    expect((await call(server, clinicB, 'DELETE', `${type}/${id}`)).status).toBe(204);
  }
  expect((await call(server, clinicB, 'DELETE', `Patient/${deletedAtB.patient}`)).status).toBe(204);
  await submitPerson(server, clinicB, r, UNIT_B);
  const reserved = await call(server, admin, 'POST', 'Consent', reservation(r, { channel: 'letter' }));
  expect(reserved.status).toBe(201);
}, 90_000);

afterAll(async () => {
  await server.stop();
});

/** Status and body of a search by a national id, with the number (echoed in the links) replaced. */
async function answer(token: string, query: string, number: string): Promise<string> {
  const reply = await call(server, token, 'GET', query.replace('{id}', `${FNR_SYSTEM}|${number}`));
  return `${reply.status} ${reply.text.split(number).join(PLACEHOLDER)}`;
}

const PERSON_QUERIES = [
  'Patient?identifier={id}',
  'EpisodeOfCare?patient:identifier={id}',
  'Condition?subject:identifier={id}',
  'EpisodeOfCare?patient.identifier={id}',
  'Condition?subject:Patient.identifier={id}',
  'Condition?patient.identifier={id}&_count=5&_offset=5',
];

describe.each(PERSON_QUERIES)('%s', (query) => {
  test('a clinic gets the same bytes for unknown, reserved and other-unit persons; its own are found', async () => {
    const unknown = await answer(clinicA, query, unknownNumber);
    expect(unknown.startsWith('200 ')).toBe(true);
    expect(unknown).not.toContain('unknown-person');
    expect(await answer(clinicA, query, reservedNumber)).toBe(unknown);
    expect(await answer(clinicA, query, otherUnit.fnr)).toBe(unknown);
    expect(await answer(clinicA, query, deletedAtB.fnr)).toBe(unknown);
    const found = await call<Bundle>(
      server,
      clinicA,
      'GET',
      query.replace('{id}', `${FNR_SYSTEM}|${own.fnr}`),
    );
    const self = found.body.link?.find((l) => l.relation === 'self')?.url ?? '';
    expect(decodeURIComponent(self)).toContain(
      query.split('?')[1].split('&')[0].replace('{id}', `${FNR_SYSTEM}|${own.fnr}`),
    );
    expect(self).not.toContain(own.patient);
  });

  test('the portal gets the same bytes for anyone but its own person', async () => {
    const portal = await server.token('portal', { pid: own.fnr });
    const unknown = await answer(portal, query, unknownNumber);
    expect(await answer(portal, query, otherUnit.fnr)).toBe(unknown);
    expect(await answer(portal, query, shared.fnr)).toBe(unknown);
    expect(await answer(portal, query, reservedNumber)).toBe(unknown);
  });
});

test('the links of a search by national id echo the query as sent, never a pseudonym or Patient id', async () => {
  const reply = await call<Bundle>(server, clinicA, 'GET', `Patient?identifier=${FNR_SYSTEM}|${shared.fnr}`);
  expect(reply.body.entry?.map((e) => e.resource?.id)).toEqual([shared.patient]);
  const pseudonym = (reply.body.entry?.[0].resource as Patient).identifier?.[0].value ?? '';
  const self = reply.body.link?.find((l) => l.relation === 'self')?.url ?? '';
  expect(decodeURIComponent(self)).toBe(`${server.baseUrl}/Patient?identifier=${FNR_SYSTEM}|${shared.fnr}`);
  expect(self).not.toContain(pseudonym);
});

test('a Patient outside the view reads exactly like one that does not exist, also when deleted', async () => {
  const missing = await call(server, clinicA, 'GET', 'Patient/does-not-exist');
  expect(missing.status).toBe(404);
  for (const id of [otherUnit.patient, deletedAtB.patient]) {
    const reply = await call(server, clinicA, 'GET', `Patient/${id}`);
    expect(`${reply.status} ${reply.text}`).toBe(`${missing.status} ${missing.text}`);
  }
  const portal = await server.token('portal', { pid: own.fnr });
  const missingForPortal = await call(server, portal, 'GET', 'Patient/does-not-exist');
  const othersForPortal = await call(server, portal, 'GET', `Patient/${otherUnit.patient}`);
  expect(othersForPortal.text).toBe(missingForPortal.text);
  const missingVersion = await call(server, clinicA, 'GET', 'Patient/does-not-exist/_history/1');
  const othersVersion = await call(server, clinicA, 'GET', `Patient/${otherUnit.patient}/_history/1`);
  expect(`${othersVersion.status} ${othersVersion.text}`).toBe(
    `${missingVersion.status} ${missingVersion.text}`,
  );
  // Whoever could see it learns that it was deleted.
  expect((await call(server, clinicB, 'GET', `Patient/${deletedAtB.patient}`)).status).toBe(410);
});

test('a clinic sees only its own unit label on a shared person; staff see all', async () => {
  const labels = (patient: Patient | undefined) =>
    (patient?.meta?.security ?? []).filter((c) => c.system === UNIT_LABEL_SYSTEM).map((c) => c.code);
  const read = await call<Patient>(server, clinicA, 'GET', `Patient/${shared.patient}`);
  expect(labels(read.body)).toEqual([UNIT_A]);
  expect(read.text).not.toContain(UNIT_B);
  const byB = await call<Bundle>(
    server,
    clinicB,
    'GET',
    `Condition?subject=Patient/${shared.patient}&_include=Condition:subject`,
  );
  const included = byB.body.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource as Patient;
  expect(labels(included)).toEqual([UNIT_B]);
  const history = await call(server, clinicA, 'GET', `Patient/${shared.patient}/_history`);
  expect(history.text).not.toContain(`"code":"${UNIT_B}"`);
  const updated = await call<Patient>(
    server,
    clinicB,
    'PUT',
    `Patient/${shared.patient}`,
    {
      resourceType: 'Patient',
      id: shared.patient,
      identifier: [{ system: FNR_SYSTEM, value: shared.fnr }],
      birthDate: '1980-01-15',
    },
    { prefer: 'return=representation' },
  );
  expect(updated.status).toBe(200);
  expect(labels(updated.body)).toEqual([UNIT_B]);
  const asStaff = await call<Patient>(server, admin, 'GET', `Patient/${shared.patient}`);
  expect(labels(asStaff.body)).toEqual([UNIT_A, UNIT_B]);
});

test('a Host header is never reflected into links or Location', async () => {
  const url = new URL(`${server.baseUrl}/Patient?birthdate=1980`);
  const text = await new Promise<string>((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        headers: { host: 'evil.example', authorization: `Bearer ${admin}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end();
  });
  const bundle = JSON.parse(text) as Bundle;
  expect(bundle.link?.[0].url).toBe(`${server.baseUrl}/Patient?birthdate=1980`);
  expect(text).not.toContain('evil.example');
});

test('deleting a Patient outside the view answers as for one that does not exist, and deletes nothing', async () => {
  const missing = await call(server, clinicA, 'DELETE', 'Patient/does-not-exist');
  const others = await call(server, clinicA, 'DELETE', `Patient/${otherUnit.patient}`);
  expect(`${others.status} ${others.text}`).toBe(`${missing.status} ${missing.text}`);
  expect((await call(server, admin, 'GET', `Patient/${otherUnit.patient}`)).status).toBe(200);
});
