import { randomUUID } from 'node:crypto';
import type {
  EpisodeOfCare,
  OperationOutcome,
  OperationOutcomeIssue,
  Parameters,
  Patient,
  QuestionnaireResponse,
  Resource,
} from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { call } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * `POST Type/$validate` as R4 has it, over HTTP: the `profile` parameter (NorPain profiles, the FHIR R4
 * base definitions; one that cannot be used is a 400), the `mode` parameter (create, update, delete),
 * every issue of every validation step in one OperationOutcome with the validator's severities, and an
 * unresolvable Questionnaire a warning here but an error on a write.
 */
const random = seededRandom(1616);
const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
const SD = 'https://norpain.no/fhir/StructureDefinition';
const R4 = 'http://hl7.org/fhir/StructureDefinition';

let server: TestServer;
let staff: string;
let clinicA: string;
let portal: string;
let patientRef: string;

beforeAll(async () => {
  server = await startTestServer();
  staff = await server.token('registry-admin');
  clinicA = await server.token('clinic', { org: '999001' });
  const person = eprPatient();
  portal = await server.token('portal', { pid: person.identifier?.[0]?.value });
  const patient = await call<Patient>(server, clinicA, 'POST', 'Patient', person, {
    prefer: 'return=representation',
  });
  expect(patient.status).toBe(201);
  patientRef = `Patient/${patient.body.id}`;
});
afterAll(async () => {
  await server.stop();
});

function eprPatient(): Patient {
  return {
    resourceType: 'Patient',
    identifier: [syntheticIdentifier('fnr', { random })],
    name: [{ family: 'Testesen', given: ['Tove'] }],
    birthDate: '1975-03-09',
  };
}

function episode(extra: Partial<EpisodeOfCare> = {}): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    extension: [{ url: `${SD}/referral-date`, valueDate: '2024-01-15' }],
    status: 'active',
    patient: { reference: patientRef },
    managingOrganization: { identifier: { system: RESH, value: '999001' } },
    period: { start: '2024-03-04' },
    ...extra,
  };
}

async function validate(
  type: string,
  body: Resource,
  query = '',
  token = staff,
): Promise<{ status: number; body: OperationOutcome }> {
  return call<OperationOutcome>(server, token, 'POST', `${type}/$validate${query}`, body);
}

function withParameters(
  resource: Resource | undefined,
  ...rest: Parameters['parameter'] & object
): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [...(resource ? [{ name: 'resource', resource }] : []), ...rest],
  };
}

const errorsOf = (outcome: OperationOutcome): OperationOutcomeIssue[] =>
  outcome.issue.filter((i) => i.severity === 'error' || i.severity === 'fatal');
const texts = (issues: OperationOutcomeIssue[]): string[] => issues.map((i) => i.details?.text ?? '');

describe('all issues of all steps, in one OperationOutcome', () => {
  test('a base error and a profile error are both reported', async () => {
    const reply = await validate(
      'EpisodeOfCare',
      episode({ status: 'bogus' as EpisodeOfCare['status'], managingOrganization: undefined }),
    );
    expect(reply.status).toBe(200);
    const errors = errorsOf(reply.body);
    expect(errors.some((i) => i.expression?.includes('EpisodeOfCare.status'))).toBe(true);
    expect(texts(errors).some((t) => t.includes(`profile ${SD}/norpain-episodeofcare`))).toBe(true);
    expect(reply.body.issue.some((i) => i.severity === 'information')).toBe(false);
  });

  /** A completed response about the test's patient to a Questionnaire the server does not hold. */
  const unresolvable = (questionnaire: string): QuestionnaireResponse => ({
    resourceType: 'QuestionnaireResponse',
    questionnaire,
    status: 'completed',
    subject: { reference: patientRef },
  });

  test('an unresolvable Questionnaire is a warning from $validate and an error on a write', async () => {
    const response = unresolvable('https://norpain.no/fhir/Questionnaire/never-loaded|1');
    const checked = await validate('QuestionnaireResponse', response);
    expect(checked.status).toBe(200);
    expect(errorsOf(checked.body)).toEqual([]);
    expect(checked.body.issue).toContainEqual(
      expect.objectContaining({
        severity: 'warning',
        code: 'not-found',
        expression: ['QuestionnaireResponse.questionnaire'],
      }),
    );
    // With a base error beside it, both are reported, each with its own severity.
    const both = await validate('QuestionnaireResponse', { ...response, status: 'done' as 'completed' });
    expect(both.body.issue.map((i) => [i.severity, i.expression?.[0]])).toEqual(
      expect.arrayContaining([
        ['error', 'QuestionnaireResponse.status'],
        ['warning', 'QuestionnaireResponse.questionnaire'],
      ]),
    );
    const written = await call<OperationOutcome>(server, staff, 'POST', 'QuestionnaireResponse', response);
    expect(written.status).toBe(422);
    expect(written.body.issue[0]).toMatchObject({ severity: 'error', code: 'not-found' });
  });

  test('an unresolvable example.org Questionnaire is only a hint, as the HL7 validator has it', async () => {
    const response = unresolvable('http://example.org/fhir/Questionnaire/never-loaded');
    const checked = await validate('QuestionnaireResponse', response);
    expect(checked.body.issue).toContainEqual(
      expect.objectContaining({ severity: 'information', code: 'not-found' }),
    );
    const written = await call<OperationOutcome>(server, staff, 'POST', 'QuestionnaireResponse', response);
    expect(written.status).toBe(422);
  });
});

describe('profile', () => {
  test('a nominated NorPain profile is applied to what the type is otherwise not held to as received', async () => {
    // An EPR's Patient is checked against base FHIR as received; the NorPain Patient forbids names.
    const plain = await validate('Patient', eprPatient());
    expect(errorsOf(plain.body)).toEqual([]);
    const nominated = await validate(
      'Patient',
      withParameters(eprPatient(), { name: 'profile', valueCanonical: `${SD}/norpain-patient` }),
    );
    expect(nominated.status).toBe(200);
    expect(texts(errorsOf(nominated.body)).some((t) => t.includes(`profile ${SD}/norpain-patient`))).toBe(
      true,
    );
    // The same in the query string, with the profile's version.
    const version = await validate(
      'Patient',
      eprPatient(),
      `?profile=${encodeURIComponent(`${SD}/norpain-patient|0.1.0`)}`,
    );
    expect(version.status).toBe(200);
    expect(errorsOf(version.body)).toEqual(errorsOf(nominated.body));
  });

  test('the base R4 definition takes the place of the NorPain profile', async () => {
    const withoutUnit = episode({ managingOrganization: undefined });
    expect(errorsOf((await validate('EpisodeOfCare', withoutUnit)).body)).not.toEqual([]);
    const base = await validate(
      'EpisodeOfCare',
      withParameters(withoutUnit, { name: 'profile', valueUri: `${R4}/EpisodeOfCare` }),
    );
    expect(base.status).toBe(200);
    expect(errorsOf(base.body)).toEqual([]);
    expect(base.body.issue[0].severity).toBe('information');
    // Base errors are still reported under a nominated base profile.
    const broken = await validate(
      'EpisodeOfCare',
      withParameters(episode({ status: 'bogus' as EpisodeOfCare['status'] }), {
        name: 'profile',
        valueUri: `${R4}/EpisodeOfCare|4.0.1`,
      }),
    );
    expect(errorsOf(broken.body).map((i) => i.expression?.[0])).toContain('EpisodeOfCare.status');
  });

  test.each([
    ['unknown', 'https://example.org/fhir/StructureDefinition/nobody-has-this', /holds no such profile/],
    ['for another type', `${SD}/norpain-episodeofcare`, /is for EpisodeOfCare, not Patient/],
    ['a base definition of another type', `${R4}/Observation`, /is for Observation, not Patient/],
    ['an extension', `${SD}/referral-date`, /is for Extension, not Patient/],
    ['another version', `${R4}/Patient|3.0.2`, /only in version 4\.0\.1/],
  ])('a profile that cannot be used (%s) is a 400', async (_, profile, message) => {
    const reply = await validate(
      'Patient',
      withParameters(eprPatient(), { name: 'profile', valueUri: profile }),
    );
    expect(reply.status).toBe(400);
    expect(reply.body.resourceType).toBe('OperationOutcome');
    expect(texts(reply.body.issue).join(' ')).toMatch(message);
    expect(reply.body.issue[0].expression).toEqual(['profile']);
  });

  test('the nominated canonical is not echoed', async () => {
    const secret = 'https://example.org/01818040071';
    const reply = await validate('Patient', eprPatient(), `?profile=${encodeURIComponent(secret)}`);
    expect(reply.status).toBe(400);
    expect(JSON.stringify(reply.body)).not.toContain('01818040071');
  });
});

describe('mode', () => {
  test('nonsense, twice, or empty is a 400', async () => {
    for (const query of ['?mode=upsert', '?mode=create&mode=update', '?mode=', '?mode=CREATE']) {
      const reply = await validate('Patient', eprPatient(), query);
      expect({ query, status: reply.status }).toEqual({ query, status: 400 });
      expect(reply.body.resourceType).toBe('OperationOutcome');
    }
    const inBody = await validate(
      'Patient',
      withParameters(eprPatient(), { name: 'mode', valueCode: 'patch' }),
    );
    expect(inBody.status).toBe(400);
    expect(texts(inBody.body.issue)[0]).toMatch(/create, update or delete/);
  });

  test('create is what a create meets; update needs the id, and one the registry could have given', async () => {
    const create = await validate(
      'EpisodeOfCare',
      withParameters(episode(), { name: 'mode', valueCode: 'create' }),
    );
    expect(errorsOf(create.body)).toEqual([]);
    const noId = await validate('EpisodeOfCare', episode(), '?mode=update');
    expect(noId.status).toBe(200);
    expect(errorsOf(noId.body)).toEqual([
      expect.objectContaining({ code: 'required', expression: ['EpisodeOfCare.id'] }),
    ]);
    const chosen = await validate('EpisodeOfCare', episode({ id: 'my-own-id' }), '?mode=update');
    expect(texts(errorsOf(chosen.body)).join(' ')).toMatch(/assigns the ids of EpisodeOfCare/);
    const stored = await call<EpisodeOfCare>(server, staff, 'POST', 'EpisodeOfCare', episode(), {
      prefer: 'return=representation',
    });
    expect(stored.status).toBe(201);
    const update = await validate('EpisodeOfCare', { ...stored.body, status: 'onhold' }, '?mode=update');
    expect(errorsOf(update.body)).toEqual([]);
    // Several problems at once in update mode: no id and a bad status.
    const several = await validate(
      'EpisodeOfCare',
      episode({ status: 'bogus' as EpisodeOfCare['status'] }),
      '?mode=update',
    );
    expect(errorsOf(several.body).map((i) => i.expression?.[0])).toEqual(
      expect.arrayContaining(['EpisodeOfCare.id', 'EpisodeOfCare.status']),
    );
  });

  test('delete checks that the caller may delete the resource, and stores nothing', async () => {
    const stored = await call<EpisodeOfCare>(server, clinicA, 'POST', 'EpisodeOfCare', episode(), {
      prefer: 'return=representation',
    });
    expect(stored.status).toBe(201);
    const own = await validate('EpisodeOfCare', stored.body, '?mode=delete', clinicA);
    expect(own.status).toBe(200);
    expect(errorsOf(own.body)).toEqual([]);
    // The portal may send a person's answers, not delete them.
    const answers: QuestionnaireResponse = {
      resourceType: 'QuestionnaireResponse',
      id: randomUUID(),
      status: 'completed',
      subject: { reference: patientRef },
    };
    const byPortal = await validate('QuestionnaireResponse', answers, '?mode=delete', portal);
    expect(byPortal.status).toBe(200);
    expect(errorsOf(byPortal.body)).toEqual([expect.objectContaining({ code: 'forbidden' })]);
    const createByPortal = await validate('QuestionnaireResponse', answers, '?mode=create', portal);
    expect(errorsOf(createByPortal.body).map((i) => i.code)).not.toContain('forbidden');
    // Without an id there is nothing to check.
    const noId = await validate('EpisodeOfCare', episode(), '?mode=delete');
    expect(noId.status).toBe(400);
    const still = await call<EpisodeOfCare>(server, staff, 'GET', `EpisodeOfCare/${stored.body.id}`);
    expect(still.status).toBe(200);
  });
});

test('a Parameters without the resource is a 400, also with mode and profile', async () => {
  const reply = await validate(
    'Patient',
    withParameters(
      undefined,
      { name: 'mode', valueCode: 'create' },
      { name: 'profile', valueUri: `${R4}/Patient` },
    ),
  );
  expect(reply.status).toBe(400);
  expect(texts(reply.body.issue)[0]).toMatch(/needs the resource/);
});
