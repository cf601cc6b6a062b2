import { randomUUID } from 'node:crypto';
import type { Bundle, OperationOutcome, Organization, Patient } from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from './client';

/**
 * Plain FHIR REST behaviour within the registry rules: the generic interactions are tested on
 * Organization (stored as sent, apart from hashed business identifiers), the Patient only where the
 * registry lets a client decide (a synthetic fødselsnummer is required; the server chooses the id).
 */

let server: TestServer;
let fhir: Client;

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

const random = seededRandom(1301);

/** A Patient of a new synthetic person (fødselsnummer with month + 80). */
const patient = (extra: Partial<Patient> = {}): Patient => ({
  resourceType: 'Patient',
  identifier: [syntheticIdentifier('fnr', { random })],
  gender: 'female',
  birthDate: '1980-01-01',
  ...extra,
});

const organization = (extra: Partial<Organization> = {}): Organization => ({
  resourceType: 'Organization',
  active: true,
  name: 'Testklinikken',
  ...extra,
});

describe('create, read, vread', () => {
  test('POST creates with a server id, 201, Location, ETag and Last-Modified, in fhir+json', async () => {
    const created = await fhir.post<Organization>('Organization', organization({ id: 'client-chosen' }));
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    const body = created.body;
    expect(body.id).toBeDefined();
    expect(body.id).not.toBe('client-chosen');
    expect(body.meta?.versionId).toBe('1');
    expect(created.headers.get('location')).toBe(`${server.baseUrl}/Organization/${body.id}/_history/1`);
    expect(created.headers.get('etag')).toBe('W/"1"');
    expect(new Date(created.headers.get('last-modified') ?? '').getTime()).toBe(
      Math.floor(new Date(body.meta?.lastUpdated ?? '').getTime() / 1000) * 1000,
    );

    const read = await fhir.get<Organization>(`Organization/${body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(body);
    expect(read.headers.get('etag')).toBe('W/"1"');
    expect((await fhir.get(`Organization/client-chosen`)).status).toBe(404);

    // Following the Location header gives the version.
    const vread = await fhir.get<Organization>(created.headers.get('location') ?? '');
    expect(vread.status).toBe(200);
    expect(vread.body.meta?.versionId).toBe('1');
  });

  test('unknown id is 404, unknown type is 404, both as OperationOutcome', async () => {
    for (const path of ['Patient/does-not-exist', 'Organization/does-not-exist']) {
      const missing = await fhir.get<OperationOutcome>(path);
      expect({ path, status: missing.status }).toEqual({ path, status: 404 });
      expect(missing.body.resourceType).toBe('OperationOutcome');
    }
    const unknownType = await fhir.get<OperationOutcome>('Pasient/1');
    expect(unknownType.status).toBe(404);
    expect(unknownType.body.issue[0].code).toBe('not-found');
  });

  test('Prefer: return=minimal gives no body, return=OperationOutcome an outcome', async () => {
    const minimal = await fhir.post('Patient', patient(), { prefer: 'return=minimal' });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\/1$/);

    const outcome = await fhir.post<OperationOutcome>('Patient', patient(), {
      prefer: 'return=OperationOutcome',
    });
    expect(outcome.status).toBe(201);
    expect(outcome.body.resourceType).toBe('OperationOutcome');
    expect(outcome.body.issue[0].severity).toBe('information');

    const representation = await fhir.post<Patient>('Patient', patient(), {
      prefer: 'return=representation',
    });
    expect(representation.body.resourceType).toBe('Patient');
  });
});

describe('update', () => {
  test('PUT updates, bumps the version, and honours If-Match', async () => {
    const { body: created } = await fhir.post<Organization>('Organization', organization());
    const id = created.id ?? '';

    const updated = await fhir.put<Organization>(
      `Organization/${id}`,
      { ...created, name: 'Omdøpt klinikk' },
      { 'if-match': 'W/"1"' },
    );
    expect(updated.status).toBe(200);
    expect(updated.body.meta?.versionId).toBe('2');
    expect(updated.headers.get('etag')).toBe('W/"2"');
    expect(updated.headers.get('location')).toBe(`${server.baseUrl}/Organization/${id}/_history/2`);

    const stale = await fhir.put<OperationOutcome>(
      `Organization/${id}`,
      { ...created, name: 'Tapt oppdatering' },
      { 'if-match': 'W/"1"' },
    );
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    expect((await fhir.get<Organization>(`Organization/${id}`)).body.name).toBe('Omdøpt klinikk');

    const v1 = await fhir.get<Organization>(`Organization/${id}/_history/1`);
    expect(v1.body.name).toBe('Testklinikken');
  });

  test('a Patient is updated by sending its national id again, with If-Match honoured', async () => {
    const sent = patient();
    const { body: created } = await fhir.post<Patient>('Patient', sent);
    const id = created.id ?? '';
    // The stored Patient carries only the registry pseudonym; the update names the person again.
    const updated = await fhir.put<Patient>(
      `Patient/${id}`,
      { ...created, identifier: sent.identifier, gender: 'male' },
      { 'if-match': 'W/"1"' },
    );
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(id);
    expect(updated.body.meta?.versionId).toBe('2');
    expect(updated.headers.get('etag')).toBe('W/"2"');
    const stale = await fhir.put<OperationOutcome>(
      `Patient/${id}`,
      { ...created, identifier: sent.identifier, gender: 'other' },
      { 'if-match': 'W/"1"' },
    );
    expect(stale.status).toBe(412);
    expect((await fhir.get<Patient>(`Patient/${id}`)).body.gender).toBe('male');
    expect((await fhir.get<Patient>(`Patient/${id}/_history/1`)).body.gender).toBe('female');
  });

  test('PUT with a body id different from the URL id, or without id, is 400', async () => {
    for (const [type, { body: created }] of [
      ['Organization', await fhir.post<Organization | Patient>('Organization', organization())],
      ['Patient', await fhir.post<Organization | Patient>('Patient', patient())],
    ] as const) {
      const mismatch = await fhir.put<OperationOutcome>(`${type}/${created.id}`, { ...created, id: 'other' });
      expect({ type, status: mismatch.status }).toEqual({ type, status: 400 });
      expect(mismatch.body.issue[0].expression).toEqual(['id']);
      const noId = await fhir.put<OperationOutcome>(
        `${type}/${created.id}`,
        type === 'Patient' ? patient() : organization(),
      );
      expect({ type, status: noId.status }).toEqual({ type, status: 400 });
    }
  });

  test('PUT to a new id creates it (update as create) with 201', async () => {
    const id = `client-id-${randomUUID()}`; // unique per run: the suite also runs against a shared HAPI
    const created = await fhir.put<Organization>(`Organization/${id}`, organization({ id }));
    expect(created.status).toBe(201);
    expect(created.body.id).toBe(id);
    expect(created.headers.get('location')).toBe(`${server.baseUrl}/Organization/${id}/_history/1`);
    expect((await fhir.get<Organization>(`Organization/${id}`)).body.name).toBe('Testklinikken');
  });

  test('malformed If-Match is 400', async () => {
    const { body: created } = await fhir.post<Organization>('Organization', organization());
    const bad = await fhir.put(`Organization/${created.id}`, created, { 'if-match': 'W/"1" garbage' });
    expect(bad.status).toBe(400);
  });
});

describe('conditional create and update', () => {
  test('If-None-Exist returns the existing resource instead of creating another', async () => {
    const identifier = [{ system: 'urn:test:conditional', value: 'c-1' }];
    const first = await fhir.post<Organization>('Organization', organization({ identifier }), {
      'if-none-exist': 'identifier=urn:test:conditional|c-1',
    });
    expect(first.status).toBe(201);
    const second = await fhir.post<Organization>('Organization', organization({ identifier }), {
      'if-none-exist': 'identifier=urn:test:conditional|c-1',
    });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    const search = await fhir.get<Bundle>('Organization?identifier=urn:test:conditional|c-1&_total=accurate');
    expect(search.body.total).toBe(1);
  });

  test('PUT Type?query creates when nothing matches and updates the single match', async () => {
    const identifier = [{ system: 'urn:test:condupdate', value: 'u-1' }];
    const created = await fhir.put<Organization>(
      'Organization?identifier=urn:test:condupdate|u-1',
      organization({ identifier }),
    );
    expect(created.status).toBe(201);
    const updated = await fhir.put<Organization>(
      'Organization?identifier=urn:test:condupdate|u-1',
      organization({ identifier, name: 'Oppdatert' }),
    );
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta?.versionId).toBe('2');
    expect(updated.body.name).toBe('Oppdatert');
  });

  test('conditional update with an unknown search parameter is 400 and writes nothing', async () => {
    const sent = patient();
    const bad = await fhir.put<OperationOutcome>('Patient?nonsense=1', sent);
    expect(bad.status).toBe(400);
    const [{ system, value }] = sent.identifier ?? [{}];
    const found = await fhir.get<Bundle>(`Patient?identifier=${system}|${value}&_summary=count`);
    expect(found.body.total).toBe(0);
  });
});

describe('delete and history', () => {
  test('DELETE gives 204, then read is 410, and history shows every version', async () => {
    const { body: created } = await fhir.post<Organization>('Organization', organization());
    const id = created.id ?? '';
    await fhir.put(`Organization/${id}`, { ...created, name: 'Omdøpt klinikk' });
    const deleted = await fhir.del(`Organization/${id}`);
    expect(deleted.status).toBe(204);
    const gone = await fhir.get<OperationOutcome>(`Organization/${id}`);
    expect(gone.status).toBe(410);
    expect(gone.body.resourceType).toBe('OperationOutcome');

    const history = await fhir.get<Bundle<Organization>>(`Organization/${id}/_history`);
    expect(history.status).toBe(200);
    expect(history.body.type).toBe('history');
    expect(history.body.total).toBe(3);
    const methods = history.body.entry?.map((e) => e.request?.method);
    expect(methods).toEqual(['DELETE', 'PUT', 'POST']);
    expect(history.body.entry?.[0].resource).toBeUndefined();
    expect(history.body.entry?.[2].resource?.name).toBe('Testklinikken');
  });

  test('type history pages with _count and a next link that works', async () => {
    const type = 'Organization';
    // _since the first of ours keeps the test independent of what a shared store (HAPI in CI) already holds.
    let since: string | undefined;
    for (let i = 0; i < 3; i++) {
      const created = await fhir.post<Organization>(type, { resourceType: type, active: true });
      since ??= created.body.meta?.lastUpdated;
    }
    expect(since).toBeDefined();
    const first = await fhir.get<Bundle>(
      `${type}/_history?_count=2&_since=${encodeURIComponent(since ?? '')}`,
    );
    expect(first.body.entry).toHaveLength(2);
    const next = first.body.link?.find((l) => l.relation === 'next')?.url;
    expect(next).toBeDefined();
    const second = await fhir.get<Bundle>(next ?? '');
    expect(second.body.entry).toHaveLength(1);
    const ids = [...(first.body.entry ?? []), ...(second.body.entry ?? [])].map((e) => e.resource?.id);
    expect(new Set(ids).size).toBe(3);
  });
});

describe('methods', () => {
  test('unsupported methods get 405 with Allow', async () => {
    const patchType = await fhir.request<OperationOutcome>('PATCH', 'Patient', { body: {} });
    expect(patchType.status).toBe(405);
    expect(patchType.headers.get('allow')).toBe('GET, POST, PUT');
    const deleteHistory = await fhir.del<OperationOutcome>('Patient/x/_history');
    expect(deleteHistory.status).toBe(405);
    expect(deleteHistory.headers.get('allow')).toBe('GET');
    const getBase = await fhir.get<OperationOutcome>('');
    expect(getBase.status).toBe(405);
    expect(getBase.body.resourceType).toBe('OperationOutcome');
  });
});
