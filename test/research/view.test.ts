import type { EpisodeOfCare, Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import { isFhirError } from '../../src/fhir/outcomes';
import { openStudyView } from '../../src/research/view';
import { people, RESH } from '../consent/fixtures';
import { submitAbout } from '../helpers/clinical';
import { startTestServer, type TestServer } from '../helpers/testServer';
import {
  approval,
  call,
  collect,
  ok,
  projectId,
  putApproval,
  questionnaire,
  researcher,
  submitPerson,
  UNIT_A,
  UNIT_B,
  type Person,
} from './fixtures';

/**
 * The study view as export and statistics read it (openStudyView().stream): the approved variables only,
 * under project pseudonyms, coarsened, and only the persons of the covered units.
 */
let server: TestServer;
let staff: string;
let inView: Person;
let otherUnit: Person;
const q = questionnaire();
const study = approval({
  variables: [
    'Patient.gender',
    'EpisodeOfCare.period',
    'EpisodeOfCare.patient',
    'EpisodeOfCare.managingOrganization',
    'QuestionnaireResponse.subject',
    'QuestionnaireResponse.authored',
    `${q.url}#smerte`,
  ],
  precision: 'month',
  ageBand: 10,
});

beforeAll(async () => {
  server = await startTestServer();
  staff = await server.token('registry-admin');
  ok(await call(server, staff, 'PUT', `Questionnaire/${q.id}`, q), 201);
  ok(await putApproval(server, staff, study), 201);
  const [a, b] = people(1301, 2);
  inView = await submitPerson(server, await server.token('clinic', { org: UNIT_A }), a, UNIT_A);
  otherUnit = await submitPerson(server, await server.token('clinic', { org: UNIT_B }), b, UNIT_B);
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

const project = (type: string, id: string) => projectId(server, study.id as string, type, id);

test('a Patient in the view: project id, age band instead of birth date, approved elements only', async () => {
  const view = await openStudyView(researcher(study.id as string), server.server.studyViews);
  const me = project('Patient', inView.patient);
  const [patient] = (await collect(view.stream('Patient', { patients: [me] }))) as Patient[];
  expect(patient.id).toBe(me);
  expect(patient.id).not.toBe(inView.patient);
  expect(patient.gender).toBe('female');
  expect(patient.birthDate).toBeUndefined();
  expect(patient.identifier).toBeUndefined();
  // Born January 1980, at the approval's start (January 2024): 44, in the band 40-49.
  expect(patient.extension?.[0].valueRange).toMatchObject({ low: { value: 40 }, high: { value: 49 } });
  expect(patient.meta?.lastUpdated).toMatch(/^\d{4}-\d{2}$/);
  expect(JSON.stringify(patient)).not.toContain(inView.patient);
});

test('episodes and answers: dates to the month, references as project ids, no free text', async () => {
  const view = await openStudyView(researcher(study.id as string), server.server.studyViews);
  const me = project('Patient', inView.patient);
  const [episode] = (await collect(view.stream('EpisodeOfCare', { patients: [me] }))) as EpisodeOfCare[];
  expect(episode).toMatchObject({
    id: project('EpisodeOfCare', inView.episode),
    period: { start: '2024-03' },
  });
  expect(episode.patient?.reference).toBe(`Patient/${me}`);
  // The unit, a covered one, by its RESH id: the one identifier the view shows (per-unit statistics).
  expect(episode.managingOrganization?.identifier).toEqual({ system: RESH, value: UNIT_A });
  expect(episode.extension).toBeUndefined(); // referral and right to care were not approved
  expect(episode.status).toBeUndefined();

  const [response] = (await collect(
    view.stream('QuestionnaireResponse', { patients: [me] }),
  )) as QuestionnaireResponse[];
  expect(response.authored).toBe('2024-03');
  expect(response.item).toEqual([{ linkId: 'smerte', answer: [{ valueInteger: 7 }] }]);
  expect(JSON.stringify(response)).not.toContain('vondt');
});

test('only persons at the covered units; unapproved types are empty', async () => {
  const view = await openStudyView(researcher(study.id as string), server.server.studyViews);
  const them = project('Patient', otherUnit.patient);
  expect(await collect(view.stream('Patient', { patients: [them] }))).toEqual([]);
  expect(await collect(view.stream('EpisodeOfCare', { patients: [them] }))).toEqual([]);
  expect(await collect(view.stream('Procedure'))).toEqual([]);
  // A registry id given as if it were a project id names nobody.
  expect(await collect(view.stream('Patient', { patients: [inView.patient] }))).toEqual([]);
});

test('the cohort is the persons with a dated resource at a covered unit in the period, read whole or person by person', async () => {
  const clinic = await server.token('clinic', { org: UNIT_A });
  const answer = (subject: string, authored: string): QuestionnaireResponse => ({
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${q.url}|1`,
    status: 'completed',
    subject: { reference: subject },
    authored,
    item: [{ linkId: 'smerte', answer: [{ valueInteger: 4 }] }],
  });
  const [c, d] = people(1311, 2);
  // No episode: in the cohort by an answer in the period alone; the other's answer is before it.
  const [onlyAnswer] = await submitAbout(server, clinic, c, (p) => [answer(p, '2024-05-02T09:00:00+01:00')]);
  const [before] = await submitAbout(server, clinic, d, (p) => [answer(p, '2019-05-02T09:00:00+01:00')]);
  const ids = async (patients?: string[]) => {
    const view = await openStudyView(researcher(study.id as string), server.server.studyViews);
    return (await collect(view.stream('Patient', patients === undefined ? {} : { patients }))).map(
      (p) => p.id,
    );
  };
  const whole = await ids();
  expect(whole).toEqual(
    expect.arrayContaining([project('Patient', onlyAnswer), project('Patient', inView.patient)]),
  );
  expect(whole).not.toContain(project('Patient', before));
  expect(whole).not.toContain(project('Patient', otherUnit.patient));
  const few = [onlyAnswer, before, otherUnit.patient].map((id) => project('Patient', id));
  expect(await ids(few)).toEqual([project('Patient', onlyAnswer)]);
});

test('a token of an unknown, inactive or expired study gets 403', async () => {
  const refused = async (studyId: string) => {
    try {
      await openStudyView(researcher(studyId), server.server.studyViews);
    } catch (err) {
      return isFhirError(err) ? err.status : err;
    }
    return 'opened';
  };
  expect(await refused('no-such-study')).toBe(403);
  const retired = approval({ id: `${study.id}-closed`, variables: ['Patient.gender'], status: 'completed' });
  ok(await putApproval(server, staff, retired), 201);
  expect(await refused(retired.id as string)).toBe(403);
  const expired = approval({
    id: `${study.id}-old`,
    variables: ['Patient.gender'],
    period: { start: '2020-01-01', end: '2021-12-31' },
  });
  ok(await putApproval(server, staff, expired), 201);
  expect(await refused(expired.id as string)).toBe(403);
  expect(await refused(study.id as string)).toBe('opened');
});
