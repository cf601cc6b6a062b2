import { randomUUID } from 'node:crypto';
import type { OperationOutcome, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from './client';

/**
 * The server remembers which Questionnaires it holds (src/ingest/questionnaire-cache.ts) so a response
 * does not cost a store search each time. A Questionnaire written, corrected or deleted through the API
 * must be what the very next response is judged against.
 */
let server: TestServer;
let fhir: Client;
const random = seededRandom(7707);
// Unique per run: the suite also runs against a shared HAPI server.
const URL = `http://example.org/Questionnaire/cache-test-${randomUUID()}`;

function form(version: string, linkId: string): Questionnaire {
  return {
    resourceType: 'Questionnaire',
    url: URL,
    version,
    status: 'active',
    item: [{ linkId, text: linkId, type: 'integer', required: true }],
  };
}

function answer(questionnaire: string, linkId: string) {
  return fhir.post<QuestionnaireResponse | OperationOutcome>('QuestionnaireResponse', {
    resourceType: 'QuestionnaireResponse',
    status: 'completed',
    questionnaire,
    subject: { identifier: syntheticIdentifier('fnr', { random }) },
    item: [{ linkId, answer: [{ valueInteger: 3 }] }],
  });
}

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

test('a new version is used by the next response that names only the url', async () => {
  expect((await fhir.post('Questionnaire', form('1', 'first'))).status).toBe(201);
  const first = await answer(URL, 'first');
  expect(first.status).toBe(201);
  expect((first.body as QuestionnaireResponse).questionnaire).toBe(`${URL}|1`);

  expect((await fhir.post('Questionnaire', form('2', 'second'))).status).toBe(201);
  const second = await answer(URL, 'second');
  expect(second.status).toBe(201);
  expect((second.body as QuestionnaireResponse).questionnaire).toBe(`${URL}|2`);
});

test('a corrected Questionnaire (same version) is what the next response is checked against', async () => {
  const created = await fhir.post<Questionnaire>('Questionnaire', form('3', 'before'));
  expect((await answer(`${URL}|3`, 'before')).status).toBe(201);
  const corrected = await fhir.put(`Questionnaire/${created.body.id}`, {
    ...form('3', 'after'),
    id: created.body.id,
  });
  expect(corrected.status).toBe(200);
  expect((await answer(`${URL}|3`, 'before')).status).toBe(422);
  expect((await answer(`${URL}|3`, 'after')).status).toBe(201);
});

test('a version unknown a moment ago is found as soon as it is written', async () => {
  const early = await answer(`${URL}|4`, 'fourth');
  expect(early.status).toBe(422);
  expect((early.body as OperationOutcome).issue[0].expression).toEqual([
    'QuestionnaireResponse.questionnaire',
  ]);
  expect((await fhir.post('Questionnaire', form('4', 'fourth'))).status).toBe(201);
  expect((await answer(`${URL}|4`, 'fourth')).status).toBe(201);
});
