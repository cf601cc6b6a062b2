import fs from 'node:fs';
import type { AuditEvent, Bundle, Patient, Resource } from '@medplum/fhirtypes';
import { AUDIT_SYSTEMS, patientPseudonymsOf } from '../../src/audit/auditEvent';
import { AuditLog, auditLogPath } from '../../src/audit/log';
import { startTestServer, type TestServer } from '../helpers/testServer';
import {
  call,
  FNR_SYSTEM,
  condition,
  people,
  submitPerson,
  UNIT_A,
  UNIT_B,
  type PersonData,
} from './fixtures';

/**
 * The audit log wired into the HTTP interface: one AuditEvent per request that reads or changes data,
 * success or failure; vault reads recorded; staff search all of it; a portal token sees only the events
 * about its own person; no national id ever reaches the audit database file.
 */
let server: TestServer;
let admin: string;
let clinicA: string;
let clinicB: string;
let P: PersonData;
let Q: PersonData;
let pseudonymP: string;
let pseudonymQ: string;

async function pseudonymOf(patientId: string): Promise<string> {
  const patient = await call<Patient>(server, admin, 'GET', `Patient/${patientId}`);
  return patient.body.identifier?.find((i) => i.system === AUDIT_SYSTEMS.registryPseudonym)?.value as string;
}

function eventsOfRequest(requestId: string): AuditEvent[] {
  const log = AuditLog.openReadOnly(auditLogPath(server.dataDir));
  try {
    return log.search({ requestId, count: 100 }).matches;
  } finally {
    log.close();
  }
}

beforeAll(async () => {
  server = await startTestServer();
  [admin, clinicA, clinicB] = await Promise.all([
    server.token('registry-admin'),
    server.token('clinic', { org: UNIT_A, hpr: '7654321' }),
    server.token('clinic', { org: UNIT_B }),
  ]);
  const [p, q] = people(8001, 2);
  P = await submitPerson(server, clinicA, p, UNIT_A);
  Q = await submitPerson(server, clinicB, q, UNIT_B);
  pseudonymP = await pseudonymOf(P.patient);
  pseudonymQ = await pseudonymOf(Q.patient);
}, 60_000);

afterAll(async () => {
  await server.stop();
});

test('every request that reads or changes data gives exactly one AuditEvent, success or failure', async () => {
  const researcher = await server.token('researcher');
  const cases: {
    id: string;
    token?: string;
    method: string;
    path: string;
    body?: unknown;
    action: string;
    outcome: string;
  }[] = [
    {
      id: 'audit-read-own',
      token: clinicA,
      method: 'GET',
      path: `Condition/${P.condition}`,
      action: 'R',
      outcome: '0',
    },
    {
      id: 'audit-read-hidden',
      token: clinicA,
      method: 'GET',
      path: `Condition/${Q.condition}`,
      action: 'R',
      outcome: '4',
    },
    {
      id: 'audit-search',
      token: clinicA,
      method: 'GET',
      path: 'Condition?_count=10',
      action: 'E',
      outcome: '0',
    },
    {
      id: 'audit-create',
      token: clinicA,
      method: 'POST',
      path: 'Condition',
      body: condition({ reference: `Patient/${P.patient}` }),
      action: 'C',
      outcome: '0',
    },
    {
      id: 'audit-invalid',
      token: clinicA,
      method: 'POST',
      path: 'Condition',
      body: { resourceType: 'Condition', status: 'nonsense' },
      action: 'C',
      outcome: '4',
    },
    {
      id: 'audit-forbidden',
      token: researcher,
      method: 'GET',
      path: `Condition/${P.condition}`,
      action: 'R',
      outcome: '4',
    },
    { id: 'audit-anonymous', method: 'GET', path: `Condition/${P.condition}`, action: 'R', outcome: '4' },
    {
      id: 'audit-delete',
      token: admin,
      method: 'DELETE',
      path: `Condition/${Q.condition}`,
      action: 'D',
      outcome: '0',
    },
  ];
  for (const c of cases) {
    const response = await fetch(`${server.baseUrl}/${c.path}`, {
      method: c.method,
      headers: {
        'x-request-id': c.id,
        ...(c.token ? { authorization: `Bearer ${c.token}` } : {}),
        ...(c.body ? { 'content-type': 'application/fhir+json' } : {}),
      },
      body: c.body ? JSON.stringify(c.body) : undefined,
    });
    await response.text();
    const events = eventsOfRequest(c.id);
    expect([c.id, events.length]).toEqual([c.id, 1]);
    expect([c.id, events[0].action, events[0].outcome]).toEqual([c.id, c.action, c.outcome]);
  }
  // Who: the client, its unit and the health professional; the person read, by pseudonym.
  const [read] = eventsOfRequest('audit-read-own');
  const agents = read.agent.map((a) => a.who?.identifier?.value);
  expect(agents).toEqual(expect.arrayContaining(['norpain-dev-clinic', UNIT_A, '7654321']));
  expect(patientPseudonymsOf(read)).toEqual([pseudonymP]);
  expect(read.entity?.some((e) => e.what?.reference === `Condition/${P.condition}`)).toBe(true);
  const [anonymous] = eventsOfRequest('audit-anonymous');
  expect(anonymous.agent[0].who?.display).toBe('unauthenticated client');
  // The capability statement holds no data and is not audited.
  await fetch(`${server.baseUrl}/metadata`, { headers: { 'x-request-id': 'audit-metadata' } });
  expect(eventsOfRequest('audit-metadata')).toEqual([]);
});

test("a write's entry, checked before the write and recorded as the request's, names who, what and whom", async () => {
  const created = await call<Resource>(
    server,
    clinicA,
    'POST',
    'Condition',
    condition({ reference: `Patient/${P.patient}` }),
    { 'x-request-id': 'audit-write-create' },
  );
  expect(created.status).toBe(201);
  const updated = await call<Resource>(
    server,
    clinicA,
    'PUT',
    `Condition/${created.body.id}`,
    { ...condition({ reference: `Patient/${P.patient}` }), id: created.body.id },
    { 'x-request-id': 'audit-write-update' },
  );
  expect(updated.status).toBe(200);
  for (const [requestId, action, code] of [
    ['audit-write-create', 'C', 'create'],
    ['audit-write-update', 'U', 'update'],
  ]) {
    const events = eventsOfRequest(requestId);
    expect([requestId, events.length]).toEqual([requestId, 1]);
    const [entry] = events;
    expect([entry.action, entry.outcome, entry.subtype?.[0]?.code]).toEqual([action, '0', code]);
    expect(entry.entity?.some((e) => e.what?.reference === `Condition/${created.body.id}`)).toBe(true);
    expect(patientPseudonymsOf(entry)).toEqual([pseudonymP]);
    expect(entry.agent.map((a) => a.who?.identifier?.value)).toEqual(
      expect.arrayContaining(['norpain-dev-clinic', UNIT_A, '7654321']),
    );
  }
  // A refused write is audited as refused, by an entry of its own, and the chain still verifies.
  const refused = await call(
    server,
    clinicA,
    'PUT',
    `Condition/${created.body.id}`,
    { ...condition({ reference: `Patient/${Q.patient}` }), id: created.body.id },
    { 'x-request-id': 'audit-write-refused' },
  );
  expect(refused.status).toBeGreaterThanOrEqual(400);
  expect(eventsOfRequest('audit-write-refused').map((e) => e.outcome)).toEqual(['4']);
  const log = AuditLog.openReadOnly(auditLogPath(server.dataDir));
  try {
    expect(log.verifyChain()).toMatchObject({ ok: true });
  } finally {
    log.close();
  }
});

test('staff search the log; a portal token sees only the events about its own person', async () => {
  const portalP = await server.token('portal', { pid: P.fnr });
  await call(server, clinicB, 'GET', `Condition/${Q.condition}`);
  await call(server, portalP, 'GET', 'Patient/$everything');

  const all = await call<Bundle>(
    server,
    admin,
    'GET',
    `AuditEvent?patient:identifier=${encodeURIComponent(`${AUDIT_SYSTEMS.registryPseudonym}|${pseudonymQ}`)}&_count=100`,
  );
  expect(all.status).toBe(200);
  expect(all.body.total).toBeGreaterThan(0);

  const own = await call<Bundle>(server, portalP, 'GET', 'AuditEvent?_count=1000');
  expect(own.status).toBe(200);
  const events = (own.body.entry ?? []).map((e) => e.resource as AuditEvent);
  expect(events.length).toBeGreaterThan(0);
  for (const event of events) {
    expect(patientPseudonymsOf(event)).toEqual([pseudonymP]);
  }
  expect(own.text).not.toContain(pseudonymQ);
  expect(own.text).not.toContain(Q.condition);
  // The clinic's read of P's Condition, and the identity vault read behind the portal's $everything.
  expect(events.some((e) => e.entity?.some((x) => x.what?.reference === `Condition/${P.condition}`))).toBe(
    true,
  );
  expect(events.some((e) => e.subtype?.some((s) => s.code === 'vault-read'))).toBe(true);

  const other = await call(
    server,
    portalP,
    'GET',
    `AuditEvent?patient:identifier=${encodeURIComponent(`${AUDIT_SYSTEMS.registryPseudonym}|${pseudonymQ}`)}`,
  );
  expect(other.status).toBe(403);
  const someoneElses = (all.body.entry ?? [])[0].resource as AuditEvent;
  expect((await call(server, portalP, 'GET', `AuditEvent/${someoneElses.id}`)).status).toBe(404);
  expect((await call(server, admin, 'GET', `AuditEvent/${someoneElses.id}`)).status).toBe(200);
  expect((await call(server, clinicA, 'GET', 'AuditEvent')).status).toBe(403);
  expect((await call(server, admin, 'POST', 'AuditEvent', { resourceType: 'AuditEvent' })).status).toBe(405);
  const inTransaction = await call(server, admin, 'POST', '', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ resource: { resourceType: 'AuditEvent' }, request: { method: 'POST', url: 'AuditEvent' } }],
  });
  expect(inTransaction.status).toBe(403);
});

test('no national id reaches the audit database, whatever the client sends; the chain verifies', async () => {
  const portal = await server.token('portal', { pid: P.fnr });
  // National ids in paths, queries, request ids and bodies.
  await call(server, admin, 'GET', `Patient/${P.fnr}`, undefined, { 'x-request-id': Q.fnr });
  await call(server, admin, 'GET', `Patient?identifier=${FNR_SYSTEM}|${P.fnr}`);
  await call(server, portal, 'GET', `Condition/${P.fnr}/_history`);
  await call(server, clinicA, 'POST', 'Patient', {
    resourceType: 'Patient',
    identifier: [{ system: FNR_SYSTEM, value: Q.fnr }],
  });
  await call(server, portal, 'GET', 'AuditEvent');
  const files = [auditLogPath(server.dataDir), `${auditLogPath(server.dataDir)}-wal`].filter((f) =>
    fs.existsSync(f),
  );
  const bytes = Buffer.concat(files.map((f) => fs.readFileSync(f)));
  expect(bytes.length).toBeGreaterThan(0);
  for (const fnr of [P.fnr, Q.fnr]) {
    expect(bytes.includes(Buffer.from(fnr))).toBe(false);
  }
  const log = AuditLog.openReadOnly(auditLogPath(server.dataDir));
  try {
    expect(log.verifyChain()).toMatchObject({ ok: true });
  } finally {
    log.close();
  }
});
