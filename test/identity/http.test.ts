import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, EpisodeOfCare, OperationOutcome, Patient, Resource } from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { registryPseudonymSystem } from '../../src/identity/pseudonym';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { bytesOf, storeFiles } from '../helpers/files';
import { startTestServer, type TestServer } from '../helpers/testServer';

/** Every write path through real HTTP: the client never gets a national id or name back. */
const random = seededRandom(5);
const FNR = preferredSystem.fnr;
const EPISODE = 'urn:oid:2.16.578.1.12.4.1.2.999001.episode';
let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startTestServer();
  token = await server.token('clinic');
});
afterAll(async () => {
  await server.stop();
});

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.baseUrl}/${url}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/fhir+json',
      accept: 'application/fhir+json',
      prefer: 'return=representation',
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    json: text ? (JSON.parse(text) as Resource) : undefined,
    headers: response.headers,
  };
}

function patient(fnr: string): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ system: FNR, value: fnr }],
    name: [{ family: 'Testesen', given: ['Tove'] }],
    telecom: [{ system: 'phone', value: '40404040' }],
    gender: 'female',
    birthDate: '1975-03-09',
    address: [{ line: ['Fjellveien 3'], postalCode: '5003', city: 'Bergen' }],
  };
}

function episode(fnr: string, number: string, status: EpisodeOfCare['status'] = 'active'): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    // What the NorPain episode profile requires: referral date, unit (RESH), first consultation.
    extension: [
      { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2024-01-15' },
    ],
    status,
    identifier: [{ system: EPISODE, value: number }],
    patient: { identifier: { system: FNR, value: fnr }, display: 'Tove Testesen' },
    managingOrganization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' } },
    period: { start: '2024-03-04', ...(status === 'finished' ? { end: '2024-09-30' } : {}) },
  };
}

function expectClean(text: string, fnr: string): void {
  for (const secret of [fnr, 'Testesen', 'Tove', '40404040', 'Fjellveien', '5003']) {
    expect(text).not.toContain(secret);
  }
}

test('development start-up creates the identity keys under DATA_DIR and says so, without the key', () => {
  const lines = server.logs.filter((l) => String(l.msg).startsWith('Created a development identity key'));
  expect(lines).toHaveLength(2);
  for (const file of ['pseudonym-keys', 'vault-key']) {
    const content = fs.readFileSync(path.join(server.dataDir, 'keys', file), 'utf8').trim();
    const key = content.includes(':') ? content.split(':')[1] : content;
    expect(JSON.stringify(server.logs)).not.toContain(key);
  }
});

describe('every write path pseudonymises', () => {
  test('POST Patient answers with the pseudonymous Patient', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const res = await call('POST', 'Patient', patient(fnr));
    expect(res.status).toBe(201);
    expectClean(res.text, fnr);
    const body = res.json as Patient;
    expect(body.identifier).toEqual([expect.objectContaining({ system: registryPseudonymSystem })]);
    expect(body.birthDate).toBe('1975-03');
    expect(res.headers.get('location')).toContain(`Patient/${body.id}`);
    // The same person again (another clinic, PUT with its own id): the same Patient.
    const again = await call('PUT', 'Patient/clinic-b-17', { ...patient(fnr), id: 'clinic-b-17' });
    expect(again.status).toBe(200);
    expect((again.json as Patient).id).toBe(body.id);
    expectClean(again.text, fnr);
    // Updating the pseudonymous Patient by its own id keeps optimistic locking.
    const stale = await call(
      'PUT',
      `Patient/${body.id}`,
      { ...patient(fnr), id: body.id },
      { 'if-match': 'W/"1"' },
    );
    expect(stale.status).toBe(412);
    expectClean(stale.text, fnr);
  });

  test('an invalid national id: 422 naming the identifier, without the number', async () => {
    const res = await call('POST', 'Patient', patient('11835066692'));
    expect(res.status).toBe(422);
    const outcome = res.json as OperationOutcome;
    expect(outcome.issue[0].expression).toEqual(['Patient.identifier[0]']);
    expect(res.text).not.toContain('11835066692');
  });

  test('conditional create and conditional update by business identifier', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const created = await call('POST', 'EpisodeOfCare', episode(fnr, 'EP-1'), {
      'if-none-exist': `identifier=${EPISODE}|EP-1`,
    });
    expect(created.status).toBe(201);
    expectClean(created.text, fnr);
    expect(created.text).not.toContain('EP-1');
    const matched = await call('POST', 'EpisodeOfCare', episode(fnr, 'EP-1'), {
      'if-none-exist': `identifier=${EPISODE}|EP-1`,
    });
    expect(matched.status).toBe(200);
    expect((matched.json as EpisodeOfCare).id).toBe((created.json as EpisodeOfCare).id);
    const updated = await call(
      'PUT',
      `EpisodeOfCare?identifier=${encodeURIComponent(`${EPISODE}|EP-1`)}`,
      episode(fnr, 'EP-1', 'finished'),
    );
    expect(updated.status).toBe(200);
    expect((updated.json as EpisodeOfCare).id).toBe((created.json as EpisodeOfCare).id);
    expect((updated.json as EpisodeOfCare).status).toBe('finished');
    expectClean(updated.text, fnr);
  });

  test('transaction: Patient and episode by urn:uuid, answered without identifiers', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:6f1b9a52-1111-4c1e-9d7a-000000000001',
          resource: patient(fnr),
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:6f1b9a52-1111-4c1e-9d7a-000000000002',
          resource: {
            ...episode(fnr, 'EP-2'),
            patient: { reference: 'urn:uuid:6f1b9a52-1111-4c1e-9d7a-000000000001' },
          },
          request: { method: 'POST', url: 'EpisodeOfCare' },
        },
      ],
    };
    const res = await call('POST', '', bundle);
    expect(res.status).toBe(200);
    expectClean(res.text, fnr);
    const search = await call('GET', `EpisodeOfCare?identifier=${encodeURIComponent(`${EPISODE}|EP-2`)}`);
    expectClean(search.text, fnr);
  });

  test('batch: each entry pseudonymised on its own', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient(fnr), request: { method: 'POST', url: 'Patient' } },
        {
          resource: episode(fnr, 'EP-3'),
          request: { method: 'PUT', url: `EpisodeOfCare?identifier=${EPISODE}|EP-3` },
        },
        { resource: patient('11835066692'), request: { method: 'POST', url: 'Patient' } },
      ],
    };
    const res = await call('POST', '', bundle);
    expect(res.status).toBe(200);
    expectClean(res.text, fnr);
    expect(res.text).not.toContain('11835066692');
    const statuses = ((res.json as Bundle).entry ?? []).map((e) => e.response?.status?.slice(0, 3));
    expect(statuses).toEqual(['201', '201', '422']);
  });

  test('nothing identifying in the clinical store files or the log', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    expect((await call('POST', 'Patient', patient(fnr))).status).toBe(201);
    const files = storeFiles(server.dataDir);
    expect(files.length).toBeGreaterThan(0);
    const bytes = Buffer.concat(files.map(bytesOf));
    for (const secret of [fnr, 'Testesen', '40404040', 'Fjellveien']) {
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
    }
    expectClean(JSON.stringify(server.logs), fnr);
  });
});
