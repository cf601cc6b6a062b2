import { randomUUID } from 'node:crypto';
import type {
  Bundle,
  Identifier,
  OperationOutcome,
  Patient,
  QuestionnaireResponse,
} from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from './client';

const random = seededRandom(1303);
const newPerson = (): Identifier => syntheticIdentifier('fnr', { random });
const token = (identifier: Identifier): string => `${identifier.system}|${identifier.value}`;

let server: TestServer;
let fhir: Client;

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

// Unique per run: the suite also runs against a shared HAPI server.
const QUESTIONNAIRE_URL = `http://example.org/Questionnaire/http-test-${randomUUID()}`;
const PATIENT_URN = 'urn:uuid:6f1b3a52-2c1e-4d9a-9a59-2f5e8b0c1d01';

function patientAndResponse(person: Identifier, status: string): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        // The response's Questionnaire travels in the same transaction, so the test needs no fixture.
        fullUrl: 'urn:uuid:6f1b3a52-2c1e-4d9a-9a59-2f5e8b0c1d00',
        resource: {
          resourceType: 'Questionnaire',
          url: QUESTIONNAIRE_URL,
          version: '1',
          status: 'active',
          item: [{ linkId: 'pain-now', text: 'Pain now (0-10)', type: 'integer' }],
        },
        request: { method: 'PUT', url: `Questionnaire?url=${QUESTIONNAIRE_URL}` },
      },
      {
        fullUrl: PATIENT_URN,
        resource: { resourceType: 'Patient', identifier: [person], gender: 'female' },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        fullUrl: 'urn:uuid:6f1b3a52-2c1e-4d9a-9a59-2f5e8b0c1d02',
        resource: {
          resourceType: 'QuestionnaireResponse',
          status,
          questionnaire: `${QUESTIONNAIRE_URL}|1`,
          subject: { reference: PATIENT_URN },
          item: [{ linkId: 'pain-now', answer: [{ valueInteger: 6 }] }],
        } as QuestionnaireResponse,
        request: { method: 'POST', url: 'QuestionnaireResponse' },
      },
    ],
  };
}

async function count(query: string): Promise<number> {
  return (await fhir.get<Bundle>(`${query}&_summary=count`)).body.total ?? -1;
}

describe('transaction', () => {
  test('creates a Patient and a QuestionnaireResponse that references it by urn:uuid', async () => {
    const person = newPerson();
    const reply = await fhir.post<Bundle>('', patientAndResponse(person, 'completed'));
    expect(reply.status).toBe(200);
    expect(reply.body.type).toBe('transaction-response');
    // A fresh server: the conditional PUT creates the Questionnaire.
    expect(reply.body.entry?.map((e) => e.response?.status.split(' ')[0])).toEqual(['201', '201', '201']);
    const [, patientLocation, responseLocation] = (reply.body.entry ?? []).map(
      (e) => e.response?.location ?? '',
    );
    const patientId = /Patient\/([^/]+)/.exec(patientLocation)?.[1];
    expect(patientId).toBeDefined();

    const responseId = /QuestionnaireResponse\/([^/]+)/.exec(responseLocation)?.[1];
    const stored = await fhir.get<QuestionnaireResponse>(`QuestionnaireResponse/${responseId}`);
    expect(stored.body.subject?.reference).toBe(`Patient/${patientId}`);
    const bySubject = await fhir.get<Bundle>(`QuestionnaireResponse?subject=Patient/${patientId}`);
    expect(bySubject.body.entry).toHaveLength(1);
    expect((await fhir.get<Patient>(`Patient/${patientId}`)).status).toBe(200);
    // The Patient was stored as the person's pseudonymous Patient: found by the fødselsnummer.
    const byPerson = await fhir.get<Bundle>(`Patient?identifier=${token(person)}`);
    expect(byPerson.body.entry?.map((e) => e.resource?.id)).toEqual([patientId]);
  });

  test('a transaction with one invalid entry is 422, names the entry, and writes nothing', async () => {
    const person = newPerson();
    const reply = await fhir.post<OperationOutcome>('', patientAndResponse(person, 'bogus'));
    expect(reply.status).toBe(422);
    expect(reply.body.issue[0].expression).toEqual(['Bundle.entry[2].resource.status']);
    expect(await count(`Patient?identifier=${token(person)}`)).toBe(0);
    // The Questionnaire entry matched the one the first test created; rolled back, it is still version 1.
    const questionnaires = await fhir.get<Bundle>(`Questionnaire?url=${QUESTIONNAIRE_URL}`);
    expect(questionnaires.body.entry?.map((e) => e.resource?.meta?.versionId)).toEqual(['1']);
  });

  test('a one-entry transaction still names its entry in errors', async () => {
    const reply = await fhir.post<OperationOutcome>('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: { resourceType: 'Organization', active: 'yes' },
          request: { method: 'POST', url: 'Organization' },
        },
      ],
    });
    expect(reply.status).toBe(422);
    expect(reply.body.issue[0].expression?.[0]).toMatch(/^Bundle\.entry\[0\]\.resource\.active/);
  });

  test('a transaction failing in the store (version conflict) writes nothing', async () => {
    const existingPerson = newPerson();
    const { body: existing } = await fhir.post<Patient>('Patient', {
      resourceType: 'Patient',
      identifier: [existingPerson],
      gender: 'male',
    });
    const person = newPerson();
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:0e7f6c35-8d4e-4a51-b7a2-0c9d3f2e1a10',
          resource: { resourceType: 'Patient', identifier: [person] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: { ...existing, identifier: [existingPerson], gender: 'female' },
          request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"7"' },
        },
      ],
    };
    const reply = await fhir.post<OperationOutcome>('', bundle);
    expect(reply.status).toBe(412);
    expect(reply.body.resourceType).toBe('OperationOutcome');
    expect(await count(`Patient?identifier=${token(person)}`)).toBe(0);
    expect((await fhir.get<Patient>(`Patient/${existing.id}`)).body.gender).toBe('male');
  });

  test('GET entries and malformed entries are refused with 400', async () => {
    const withGet = await fhir.post<OperationOutcome>('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'GET', url: 'Patient' } }],
    });
    expect(withGet.status).toBe(400);
    expect(withGet.body.issue[0].expression).toEqual(['Bundle.entry[0].request.method']);
    const notABundle = await fhir.post<OperationOutcome>('', { resourceType: 'Patient' });
    expect(notABundle.status).toBe(400);
    const wrongType = await fhir.post<OperationOutcome>('', { resourceType: 'Bundle', type: 'collection' });
    expect(wrongType.status).toBe(400);
  });
});

describe('batch', () => {
  test('runs each entry on its own; failures become OperationOutcomes in their entry', async () => {
    const existingPerson = newPerson();
    const { body: existing } = await fhir.post<Patient>('Patient', {
      resourceType: 'Patient',
      identifier: [existingPerson],
    });
    const person = newPerson();
    const reply = await fhir.post<Bundle>('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: { resourceType: 'Patient', identifier: [person] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: { resourceType: 'Patient', identifier: [newPerson()], gender: 'bogus' },
          request: { method: 'POST', url: 'Patient' },
        },
        { request: { method: 'GET', url: `Patient/${existing.id}` } },
        { request: { method: 'GET', url: `Patient?identifier=${token(existingPerson)}` } },
        { request: { method: 'GET', url: 'Patient/missing-id' } },
        { resource: { resourceType: 'Observation' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(reply.status).toBe(200);
    expect(reply.body.type).toBe('batch-response');
    const entries = reply.body.entry ?? [];
    expect(entries.map((e) => e.response?.status.split(' ')[0])).toEqual([
      '201',
      '422',
      '200',
      '200',
      '404',
      '400',
    ]);
    expect(entries[0].response?.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    expect(entries[1].response?.outcome?.resourceType).toBe('OperationOutcome');
    expect((entries[1].response?.outcome as OperationOutcome).issue[0].expression).toEqual([
      'Patient.gender',
    ]);
    expect(entries[2].resource?.id).toBe(existing.id);
    expect((entries[3].resource as Bundle).type).toBe('searchset');
    expect((entries[3].resource as Bundle).entry?.map((e) => e.resource?.id)).toEqual([existing.id]);
    expect(await count(`Patient?identifier=${token(person)}`)).toBe(1);
  });
});
