import type {
  Bundle,
  EpisodeOfCare,
  OperationOutcome,
  Patient,
  QuestionnaireResponse,
} from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { profileIssues } from '../../src/validation/profiles';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from '../http/client';

/**
 * The NorPain profiles in the write path, over HTTP: EpisodeOfCare and QuestionnaireResponse as
 * received (refused with 422 and the offending expression, nothing stored), the Patient as stored after
 * pseudonymisation (what a realistic EPR sends must come out conforming).
 */

const REFERRAL = 'https://norpain.no/fhir/StructureDefinition/referral-date';
const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
const random = seededRandom(2024);

let server: TestServer;
let fhir: Client;

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

async function count(type: string): Promise<number | undefined> {
  return (await fhir.get<Bundle>(`${type}?_summary=count`)).body.total;
}

function episode(patient: string, extra: Partial<EpisodeOfCare> = {}): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    extension: [{ url: REFERRAL, valueDate: '2024-01-15' }],
    status: 'active',
    patient: { reference: patient },
    managingOrganization: { identifier: { system: RESH, value: '999001' } },
    period: { start: '2024-03-04' },
    ...extra,
  };
}

/** A Patient as an EPR sends it: national id, name, two addresses, phone, full birth date. */
function eprPatient(): Patient {
  return {
    resourceType: 'Patient',
    identifier: [syntheticIdentifier('fnr', { random })],
    name: [{ family: 'Testesen', given: ['Tove'] }],
    telecom: [{ system: 'phone', value: '40404040' }],
    gender: 'female',
    birthDate: '1975-03-09',
    address: [
      { use: 'home', line: ['Fjellveien 3'], postalCode: '5003', city: 'Bergen', district: 'Bergen' },
      { use: 'temp', line: ['Storgata 1'], postalCode: '0155', city: 'Oslo' },
    ],
  };
}

let patientId: string;

test('a realistic EPR Patient is stored, conforming to the pseudonymised Patient profile', async () => {
  const created = await fhir.post<Patient>('Patient', eprPatient());
  expect(created.status).toBe(201);
  patientId = created.body.id as string;
  const stored = await fhir.get<Patient>(`Patient/${patientId}`);
  expect(profileIssues(stored.body).filter((i) => i.severity === 'error')).toEqual([]);
  expect(stored.body.address?.length ?? 0).toBeLessThanOrEqual(1);
});

test('a conforming EpisodeOfCare is accepted', async () => {
  expect((await fhir.post('EpisodeOfCare', episode(`Patient/${patientId}`))).status).toBe(201);
});

test.each([
  ['without the referral date', { extension: [] }, 'EpisodeOfCare.extension'],
  ['without the managing unit', { managingOrganization: undefined }, 'EpisodeOfCare.managingOrganization'],
])(
  'an EpisodeOfCare %s is refused with 422 naming it, and nothing is stored',
  async (_name, extra, where) => {
    const before = await count('EpisodeOfCare');
    const body = episode(`Patient/${patientId}`, extra as Partial<EpisodeOfCare>);
    if (Array.isArray(body.extension) && body.extension.length === 0) {
      delete body.extension;
    }
    const reply = await fhir.post<OperationOutcome>('EpisodeOfCare', body);
    expect(reply.status).toBe(422);
    expect(reply.body.issue?.flatMap((i) => i.expression ?? []).some((e) => e.startsWith(where))).toBe(true);
    expect(await count('EpisodeOfCare')).toBe(before);
  },
);

test('a QuestionnaireResponse without subject is refused with 422 at QuestionnaireResponse.subject', async () => {
  const before = await count('QuestionnaireResponse');
  const reply = await fhir.post<OperationOutcome>('QuestionnaireResponse', {
    resourceType: 'QuestionnaireResponse',
    questionnaire: 'https://norpain.no/fhir/Questionnaire/norpain-baseline',
    status: 'completed',
  } satisfies QuestionnaireResponse);
  expect(reply.status).toBe(422);
  expect(reply.body.issue?.flatMap((i) => i.expression ?? [])).toContain('QuestionnaireResponse.subject');
  expect(await count('QuestionnaireResponse')).toBe(before);
});

test('$validate reports a profile violation and stores nothing', async () => {
  const before = await count('EpisodeOfCare');
  const reply = await fhir.post<OperationOutcome>('EpisodeOfCare/$validate', {
    ...episode(`Patient/${patientId}`),
    managingOrganization: undefined,
  });
  expect(reply.body.issue?.some((i) => i.severity === 'error')).toBe(true);
  expect(await count('EpisodeOfCare')).toBe(before);
});
