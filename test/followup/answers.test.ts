import type {
  Bundle,
  OperationOutcome,
  Questionnaire,
  QuestionnaireResponse,
  Task,
} from '@medplum/fhirtypes';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import type { TestServer } from '../helpers/testServer';
import { fillResponse } from '../validation/responses';
import {
  baselineQuestionnaire,
  call,
  DAY,
  ok,
  people,
  register,
  type Registered,
  startFollowUpServer,
  taskAt,
} from './fixtures';

/**
 * Closing the loop (docs/followup.md): an answer completes the Task it is basedOn, or else the person's
 * open Task for that Questionnaire whose period holds the answer; an answer basedOn another person's Task,
 * or one outside the Task's period, is refused with 422 and stores nothing.
 */
let server: TestServer;
let clinic: string;
let staff: string;
const persons = people(4303, 4);
const baseline = baselineQuestionnaire();

beforeAll(async () => {
  ({ server, clinic, staff } = await startFollowUpServer());
});
afterAll(() => server.stop());

const baselineTask = (person: Registered): Promise<Task> =>
  taskAt(server, staff, person.episodeId, 'baseline');

function answer(person: Registered, extra: Partial<QuestionnaireResponse> = {}): QuestionnaireResponse {
  return {
    ...fillResponse(baseline),
    subject: { reference: `Patient/${person.patientId}` },
    authored: new Date().toISOString(),
    ...extra,
  };
}

const responsesOf = async (person: Registered): Promise<number> =>
  ok(
    await call<Bundle>(
      server,
      staff,
      'GET',
      `QuestionnaireResponse?subject=Patient/${person.patientId}&_summary=count`,
    ),
    200,
  ).total ?? -1;

test('the portal’s answer basedOn the Task completes it, and the Task names the answer', async () => {
  const person = await register(server, clinic, persons[0]);
  const task = await baselineTask(person);
  const portal = await server.token('portal', { pid: person.fnr });
  const open = ok(await call<Bundle<Task>>(server, portal, 'GET', 'Task?status=requested'), 200);
  expect(open.entry?.map((e) => e.resource?.id)).toEqual([task.id]);

  const stored = ok(
    await call<QuestionnaireResponse>(
      server,
      portal,
      'POST',
      'QuestionnaireResponse',
      answer(person, { basedOn: [{ reference: `Task/${task.id}` }] }),
    ),
    201,
  );
  // R4 allows only CarePlan and ServiceRequest in QuestionnaireResponse.basedOn: the link is kept on the Task.
  expect(stored.basedOn).toBeUndefined();
  expect(await baselineTask(person)).toMatchObject({
    status: 'completed',
    businessStatus: { coding: [{ code: 'answered' }] },
    output: [{ valueReference: { reference: `QuestionnaireResponse/${stored.id}` } }],
  });
  expect(ok(await call<Bundle>(server, portal, 'GET', 'Task?status=requested'), 200).entry ?? []).toEqual([]);
});

test('a clinic’s answer without basedOn is matched by Questionnaire, person and period', async () => {
  const person = await register(server, clinic, persons[1]);
  ok(await call(server, clinic, 'POST', 'QuestionnaireResponse', answer(person)), 201);
  expect(await baselineTask(person)).toMatchObject({ status: 'completed' });
});

test('an answer basedOn another person’s Task is refused with 422, stores nothing and leaves both Tasks open', async () => {
  const mine = await register(server, clinic, persons[2]);
  const theirs = await register(server, clinic, persons[3]);
  const theirTask = await baselineTask(theirs);
  const before = await responsesOf(mine);
  const reply = await call<OperationOutcome>(
    server,
    clinic,
    'POST',
    'QuestionnaireResponse',
    answer(mine, { basedOn: [{ reference: `Task/${theirTask.id}` }] }),
  );
  expect(reply.status).toBe(422);
  expect(reply.body.issue[0]).toMatchObject({ expression: ['QuestionnaireResponse.basedOn[0]'] });
  expect(reply.body.issue[0].details?.text).toMatch(/no follow-up Task of the person/);
  expect(await responsesOf(mine)).toBe(before);
  expect((await baselineTask(theirs)).status).toBe('requested');
  expect((await baselineTask(mine)).status).toBe('requested');

  // The portal cannot even see the other person's Task: refused as well, and nothing stored.
  const portal = await server.token('portal', { pid: mine.fnr });
  const fromPortal = await call(
    server,
    portal,
    'POST',
    'QuestionnaireResponse',
    answer(mine, { basedOn: [{ reference: `Task/${theirTask.id}` }] }),
  );
  expect(fromPortal.status).toBe(422);
  const missing = await call(
    server,
    portal,
    'POST',
    'QuestionnaireResponse',
    answer(mine, { basedOn: [{ reference: 'Task/0b5e1a42-6f0e-4b8e-9d7c-3f1a2b4c5d6e' }] }),
  );
  expect(missing.text).toBe(fromPortal.text); // another person's Task reads as one that does not exist
  expect(await responsesOf(mine)).toBe(before);
});

test('an answer authored outside the Task’s period closes nothing; basedOn the Task it is refused', async () => {
  const person = await register(server, clinic, persons[2]);
  const task = await baselineTask(person);
  const early = new Date(Date.parse(task.executionPeriod?.start as string) - 3 * DAY).toISOString();
  ok(await call(server, clinic, 'POST', 'QuestionnaireResponse', answer(person, { authored: early })), 201);
  expect((await baselineTask(person)).status).toBe('requested');
  const refused = await call<OperationOutcome>(
    server,
    clinic,
    'POST',
    'QuestionnaireResponse',
    answer(person, { authored: early, basedOn: [{ reference: `Task/${task.id}` }] }),
  );
  expect(refused.status).toBe(422);
  expect(refused.body.issue[0].details?.text).toMatch(/outside that period/);
  expect((await baselineTask(person)).status).toBe('requested');
});

test('an answer’s Task, looked up while the answer is stored, is the answering person’s own; without authored it is matched after', async () => {
  const [a, b, c] = await Promise.all(people(4311, 3).map((person) => register(server, clinic, person)));
  // In progress: a's Task is marked in progress, b's stays as it was.
  ok(await call(server, clinic, 'POST', 'QuestionnaireResponse', answer(a, { status: 'in-progress' })), 201);
  expect(await baselineTask(a)).toMatchObject({ status: 'in-progress' });
  expect(await baselineTask(b)).toMatchObject({ status: 'requested' });
  ok(await call(server, clinic, 'POST', 'QuestionnaireResponse', answer(a)), 201);
  expect(await baselineTask(a)).toMatchObject({ status: 'completed' });
  expect(await baselineTask(b)).toMatchObject({ status: 'requested' });
  // No authored: matched by the time it was stored, which lies in the Task's period.
  const unauthored = answer(c);
  delete unauthored.authored;
  ok(await call(server, clinic, 'POST', 'QuestionnaireResponse', unauthored), 201);
  expect(await baselineTask(c)).toMatchObject({ status: 'completed' });
  expect(await baselineTask(b)).toMatchObject({ status: 'requested' });
});

test('an answer to a Questionnaire no follow-up Task asks for is stored and closes no Task', async () => {
  const person = await register(server, clinic, people(4321, 1)[0]);
  const form = readNorPainQuestionnaires().find((q) =>
    q.url?.endsWith('/norpain-clinician-episode'),
  ) as Questionnaire;
  ok(
    await call(server, clinic, 'POST', 'QuestionnaireResponse', {
      ...fillResponse(form),
      subject: { reference: `Patient/${person.patientId}` },
      authored: new Date().toISOString(),
    }),
    201,
  );
  expect(await responsesOf(person)).toBe(1);
  expect(await baselineTask(person)).toMatchObject({ status: 'requested' });
  // The baseline answer still completes it.
  ok(await call(server, clinic, 'POST', 'QuestionnaireResponse', answer(person)), 201);
  expect(await baselineTask(person)).toMatchObject({ status: 'completed' });
});
