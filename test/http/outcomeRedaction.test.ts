import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { seededRandom, syntheticNationalId } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { call, condition, type Reply } from '../consent/fixtures';

/**
 * No OperationOutcome carries a national id (DESIGN §3), also where it quotes what the client sent: a
 * clinic that puts a fødselsnummer or a D-number where a reference's type or id, a conditional query, a
 * canonical URL, a property name, a header or a search parameter belongs gets a 4xx saying what to change,
 * and the number is not in the response.
 */

let server: TestServer;
let clinic: string;

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic');
});

afterAll(async () => {
  await server.stop();
});

const random = seededRandom(2026);
const numbers = {
  fødselsnummer: syntheticNationalId('fnr', { random }),
  'D-number': syntheticNationalId('dnr', { random }),
};

/** A clinic's Condition about a person, with the reference given. */
const conditionWith = (reference: string) => condition('redaction', 'answer', { reference });

/** Each place a request's text is quoted in an error: the request, and what the answer must say. */
const places: [string, (n: string) => Promise<Reply<OperationOutcome>>, RegExp][] = [
  [
    "a reference's type",
    (n) => call(server, clinic, 'POST', 'Condition', conditionWith(`${n}/1`)),
    /type .* is not a FHIR R4 resource type/,
  ],
  [
    "a reference's id",
    (n) => call(server, clinic, 'POST', 'Condition', conditionWith(`Patient/x${n}_`)),
    /not a valid resource id/,
  ],
  [
    'a contained reference',
    (n) => call(server, clinic, 'POST', 'Condition', conditionWith(`#${n}_`)),
    /not a valid contained resource id/,
  ],
  [
    "a conditional reference's type",
    (n) => call(server, clinic, 'POST', 'Condition', conditionWith(`${n}?identifier=a|b`)),
    /not a FHIR R4 resource type/,
  ],
  [
    "a conditional reference's search parameter",
    (n) => call(server, clinic, 'POST', 'Condition', conditionWith(`Patient?${n}=1`)),
    /conditional reference cannot be searched/,
  ],
  [
    "a QuestionnaireResponse's canonical",
    (n) =>
      call(server, clinic, 'POST', 'QuestionnaireResponse', {
        resourceType: 'QuestionnaireResponse',
        status: 'completed',
        questionnaire: `https://example.org/Questionnaire/${n}`,
        subject: { reference: 'Patient/1' },
      }),
    /holds no Questionnaire/,
  ],
  [
    'a property name',
    (n) => call(server, clinic, 'POST', 'Condition', { ...conditionWith('Patient/1'), [`x${n}`]: 1 }),
    /additional property/,
  ],
  [
    'the Content-Type',
    (n) =>
      call(server, clinic, 'POST', 'Condition', conditionWith('Patient/1'), {
        'content-type': `application/x-${n}`,
      }),
    /Content-Type .* is not supported/,
  ],
  [
    "a search parameter's name",
    (n) => call(server, clinic, 'GET', `Condition?${n}=1`),
    /Search parameter .* is malformed/,
  ],
];

describe.each(Object.entries(numbers))('a %s', (_kind, number) => {
  test.each(places)('in %s is a 4xx that does not quote it', async (_place, send, says) => {
    const reply = await send(number);
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
    expect(reply.body.resourceType).toBe('OperationOutcome');
    expect(reply.body.issue?.map((i) => i.details?.text).join(' ')).toMatch(says);
    expect(reply.text).not.toContain(number);
  });

  test("in a batch entry's reference is that entry's 4xx, which does not quote it", async () => {
    const reply = await call<Bundle>(server, clinic, 'POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ resource: conditionWith(`${number}/1`), request: { method: 'POST', url: 'Condition' } }],
    });
    expect(reply.status).toBe(200);
    const response = reply.body.entry?.[0].response;
    expect(response?.status).toMatch(/^4\d\d/);
    const outcome = response?.outcome as OperationOutcome;
    expect(outcome.issue?.[0].details?.text).toMatch(/not a FHIR R4 resource type/);
    expect(reply.text).not.toContain(number);
  });
});
