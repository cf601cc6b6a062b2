import type { AuditEvent, Bundle, Patient } from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from '../http/client';

/** Issue 11: a batch answers every entry with its own status; a malformed transaction writes nothing. */

const random = seededRandom(4242);
let server: TestServer;
let fhir: Client;

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

const patient = (): Patient => ({
  resourceType: 'Patient',
  identifier: [syntheticIdentifier('fnr', { random })],
  gender: 'male',
});
const create = () => ({ resource: patient(), request: { method: 'POST', url: 'Patient' } });
const MALFORMED = [
  null,
  42,
  'entry',
  [],
  { resource: patient() },
  { resource: patient(), request: 'POST Patient' },
  { resource: patient(), request: { method: 'POST', url: 7 } },
  { resource: patient(), request: { method: 'POST', url: { path: 'Patient' } } },
  { resource: patient(), request: { method: 'FROB', url: 'Patient' } },
  { resource: patient(), request: { method: 9, url: 'Patient' } },
  { resource: 'x', request: { method: 'POST', url: 'Patient' } },
  { request: { method: 'GET', url: 'Patient/$01818040071' } },
];

async function patientCount(): Promise<number> {
  const reply = await fhir.get<Bundle>('Patient?_summary=count');
  return reply.body.total ?? -1;
}

test('a batch answers each malformed entry with its own 400 and runs the valid ones', async () => {
  const before = await patientCount();
  const entry = [create(), ...MALFORMED, create()];
  const reply = await fhir.post<Bundle>('', { resourceType: 'Bundle', type: 'batch', entry });
  expect(reply.status).toBe(200);
  const statuses = (reply.body.entry ?? []).map((e) => e.response?.status?.split(' ')[0]);
  expect(statuses).toEqual([
    '201',
    ...MALFORMED.map((m) =>
      m !== null &&
      typeof m === 'object' &&
      'request' in m &&
      (m.request as { url?: unknown }).url === 'Patient/$01818040071'
        ? '404'
        : '400',
    ),
    '201',
  ]);
  for (const response of (reply.body.entry ?? []).slice(1, -1)) {
    expect(response.response?.outcome?.resourceType).toBe('OperationOutcome');
  }
  expect(await patientCount()).toBe(before + 2);

  // The audit entry names every entry's outcome.
  const audit = await fhir.get<Bundle<AuditEvent>>(`AuditEvent?_count=50`);
  const event = (audit.body.entry ?? [])
    .map((e) => e.resource)
    .find((e) => e?.subtype?.some((s) => s.code === 'batch'));
  expect(event?.outcomeDesc).toBe(`Bundle entry statuses in order: ${statuses.join(' ')}`);
});

test('a transaction with any malformed entry is refused whole (400) and writes nothing', async () => {
  for (const bad of MALFORMED) {
    const before = await patientCount();
    const reply = await fhir.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [create(), bad, create()],
    });
    expect([JSON.stringify(bad), reply.status]).toEqual([JSON.stringify(bad), 400]);
    expect(await patientCount()).toBe(before);
  }
});
