import type { Task } from '@medplum/fhirtypes';
import type { TestServer } from '../helpers/testServer';
import { call, episode, ok, people, register, tasksOf, timePointOf, startFollowUpServer } from './fixtures';

/**
 * Episodes in, follow-up Tasks out (docs/followup.md): the baseline Task once right to care is granted,
 * the 12-month Task once the episode ended, one per episode and time point however often the data come,
 * moved with the end date and cancelled when the episode is no longer ended.
 */
let server: TestServer;
let clinic: string;
let staff: string;
const persons = people(4101, 6);

beforeAll(async () => {
  ({ server, clinic, staff } = await startFollowUpServer());
});
afterAll(() => server.stop());

const byTimePoint = (tasks: Task[]) => new Map(tasks.map((t) => [timePointOf(t), t]));

test('an ended episode with right to care gets a baseline Task and a 12-month Task at end + 12 months', async () => {
  const person = await register(server, clinic, persons[0], { start: '2024-03-04', end: '2024-09-30' });
  const tasks = byTimePoint(await tasksOf(server, staff, person.episodeId));
  expect([...tasks.keys()].sort()).toEqual(['12-months', 'baseline']);
  const followUp = tasks.get('12-months') as Task;
  expect(followUp).toMatchObject({
    status: 'requested',
    intent: 'order',
    for: { reference: `Patient/${person.patientId}` },
    reasonReference: { reference: `EpisodeOfCare/${person.episodeId}` },
    businessStatus: { coding: [{ code: 'scheduled' }] },
    input: [{ valueCanonical: 'https://norpain.no/fhir/Questionnaire/norpain-followup-12m|1.0.0' }],
  });
  expect(followUp.executionPeriod?.start).toBe('2025-09-30T00:00:00.000Z');
  expect(followUp.focus?.reference).toMatch(/^Questionnaire\//);
  expect(followUp.meta?.security).toEqual([
    { system: 'https://norpain.no/fhir/CodeSystem/unit', code: '999001' },
  ]);
});

test('re-sent data never duplicate Tasks or add versions; a changed end date moves the Task', async () => {
  const person = await register(server, clinic, persons[1], { start: '2024-03-04', end: '2024-09-30' });
  const before = byTimePoint(await tasksOf(server, staff, person.episodeId));
  const stored = ok(await call<Task>(server, clinic, 'GET', `EpisodeOfCare/${person.episodeId}`), 200);
  ok(await call(server, clinic, 'PUT', `EpisodeOfCare/${person.episodeId}`, stored), 200);
  const again = byTimePoint(await tasksOf(server, staff, person.episodeId));
  expect(again.size).toBe(2);
  expect(again.get('12-months')?.meta?.versionId).toBe(before.get('12-months')?.meta?.versionId);
  expect(again.get('baseline')?.meta?.versionId).toBe(before.get('baseline')?.meta?.versionId);

  const moved = episode(`Patient/${person.patientId}`, { start: '2024-03-04', end: '2024-11-15' });
  ok(
    await call(server, clinic, 'PUT', `EpisodeOfCare/${person.episodeId}`, {
      ...moved,
      id: person.episodeId,
    }),
    200,
  );
  const after = byTimePoint(await tasksOf(server, staff, person.episodeId));
  expect(after.size).toBe(2);
  expect(after.get('12-months')?.id).toBe(before.get('12-months')?.id);
  expect(after.get('12-months')?.executionPeriod?.start).toBe('2025-11-15T00:00:00.000Z');
});

test('an episode no longer ended cancels its 12-month Task; ended again, the Task is requested again', async () => {
  const person = await register(server, clinic, persons[2], { start: '2024-03-04', end: '2024-09-30' });
  const reopened = episode(`Patient/${person.patientId}`, { start: '2024-03-04' });
  ok(
    await call(server, clinic, 'PUT', `EpisodeOfCare/${person.episodeId}`, {
      ...reopened,
      id: person.episodeId,
    }),
    200,
  );
  const cancelled = byTimePoint(await tasksOf(server, staff, person.episodeId)).get('12-months');
  expect(cancelled).toMatchObject({
    status: 'cancelled',
    businessStatus: { coding: [{ code: 'episode-changed' }] },
  });
  expect(cancelled?.statusReason?.text).toMatch(/not ended/);

  const ended = episode(`Patient/${person.patientId}`, { start: '2024-03-04', end: '2024-12-01' });
  ok(
    await call(server, clinic, 'PUT', `EpisodeOfCare/${person.episodeId}`, {
      ...ended,
      id: person.episodeId,
    }),
    200,
  );
  const tasks = (await tasksOf(server, staff, person.episodeId)).filter(
    (t) => timePointOf(t) === '12-months',
  );
  expect(tasks).toHaveLength(1);
  expect(tasks[0]).toMatchObject({
    status: 'requested',
    executionPeriod: { start: '2025-12-01T00:00:00.000Z' },
  });
});

test('no 12-month Task for an episode shorter than FOLLOWUP_MIN_EPISODE_DAYS, none at all without right to care', async () => {
  const short = await register(server, clinic, persons[3], { start: '2024-03-04', end: '2024-03-20' });
  expect((await tasksOf(server, staff, short.episodeId)).map(timePointOf)).toEqual(['baseline']);
  const refused = await register(server, clinic, persons[4], { granted: false });
  expect(await tasksOf(server, staff, refused.episodeId)).toEqual([]);
});

test('no client may write a Task: EPRs, the portal and staff get 403, and nothing is stored', async () => {
  const person = await register(server, clinic, persons[5]);
  const [task] = await tasksOf(server, staff, person.episodeId);
  const portal = await server.token('portal', { pid: persons[5] });
  for (const token of [clinic, portal, staff]) {
    const created = await call(server, token, 'POST', 'Task', { ...task, id: undefined });
    expect(created.status).toBe(403);
    const changed = await call(server, token, 'PUT', `Task/${task.id}`, { ...task, status: 'completed' });
    expect(changed.status).toBe(403);
  }
  const [unchanged] = await tasksOf(server, staff, person.episodeId);
  expect(unchanged.meta?.versionId).toBe(task.meta?.versionId);
  expect(await tasksOf(server, staff, person.episodeId)).toHaveLength(1);
});
