import type { AuditEvent, Bundle, Task } from '@medplum/fhirtypes';
import { OutboxChannel } from '../../src/followup/outbox';
import type { TestServer } from '../helpers/testServer';
import { DAY, outbox, people, register, tasksOf, startFollowUpServer, taskAt as taskOf } from './fixtures';

/**
 * Dispatch through the outbox channel by a controllable clock (docs/followup.md): due Tasks get exactly one
 * invitation each, reminders every FOLLOWUP_REMINDER_DAYS up to FOLLOWUP_MAX_REMINDERS, and a Task not
 * answered within FOLLOWUP_ANSWER_DAYS expires.
 */
let server: TestServer;
let clinic: string;
let staff: string;
const persons = people(4202, 3);

beforeAll(async () => {
  ({ server, clinic, staff } = await startFollowUpServer({
    FOLLOWUP_REMINDER_DAYS: '10',
    FOLLOWUP_MAX_REMINDERS: '2',
    FOLLOWUP_ANSWER_DAYS: '40',
  }));
});
afterAll(() => server.stop());

const taskAt = (episodeId: string, timePoint: string): Promise<Task> =>
  taskOf(server, staff, episodeId, timePoint);

test('due Tasks get one invitation each, with the national id only in the message; reminders and expiry follow the clock', async () => {
  const dispatcher = server.server.followUp.dispatcher;
  // Ended a month ago, so its 12-month Task is due in eleven months.
  const endDate = new Date(Date.now() - 30 * DAY).toISOString().slice(0, 10);
  const ended = await register(server, clinic, persons[0], { start: '2024-02-10', end: endDate });
  const open = await register(server, clinic, persons[1], { start: '2024-02-01' });
  const baseline = await taskAt(open.episodeId, 'baseline');
  const start = new Date(baseline.executionPeriod?.start as string);

  // Before anything is due for the 12-month Task, only the baseline invitations go out.
  const first = await dispatcher.run(new Date(start.getTime() + 1000));
  expect(first).toMatchObject({ invited: 2, reminded: 0, redelivered: 0 });
  const sent = outbox(server);
  const baselineOf = async (episodeId: string) => (await taskAt(episodeId, 'baseline')).id as string;
  const expected = new Map([
    [OutboxChannel.fileName(`${await baselineOf(ended.episodeId)}/1`), persons[0]],
    [OutboxChannel.fileName(`${await baselineOf(open.episodeId)}/1`), persons[1]],
  ]);
  expect([...sent.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [file, message] of sent) {
    expect(message).toMatchObject({
      type: 'norpain-follow-up-invitation',
      version: 1,
      kind: 'invitation',
      attempt: 1,
      recipient: expected.get(file),
      questionnaire: 'https://norpain.no/fhir/Questionnaire/norpain-baseline|1.0.0',
    });
    expect(message.task).toBe(`Task/${message.idempotencyKey.split('/')[0]}`);
  }
  expect((await taskAt(open.episodeId, 'baseline')).businessStatus?.coding?.[0].code).toBe('invited');
  // The national id is in the message, never in the store.
  expect(JSON.stringify(await tasksOf(server, staff, open.episodeId))).not.toContain(persons[1]);

  // Running again at the same time sends nothing; 10 days later the reminders, then one more, then no more.
  expect(await dispatcher.run(new Date(start.getTime() + 2000))).toMatchObject({ invited: 0, reminded: 0 });
  expect(await dispatcher.run(new Date(start.getTime() + 10 * DAY + 5000))).toMatchObject({ reminded: 2 });
  expect(await dispatcher.run(new Date(start.getTime() + 20 * DAY + 10_000))).toMatchObject({ reminded: 2 });
  expect(await dispatcher.run(new Date(start.getTime() + 30 * DAY + 20_000))).toMatchObject({ reminded: 0 });
  expect(outbox(server).size).toBe(6);
  const reminder = outbox(server).get(OutboxChannel.fileName(`${baseline.id}/3`));
  expect(reminder).toMatchObject({ kind: 'reminder', attempt: 3, recipient: persons[1] });

  // After the answer window the baseline Tasks expire: failed, with the reason.
  // (The report's count would include earlier runs' Tasks on a shared HAPI server: the Tasks are checked.)
  await dispatcher.run(new Date(start.getTime() + 41 * DAY));
  expect((await taskAt(ended.episodeId, 'baseline')).status).toBe('failed');
  const expired = await taskAt(open.episodeId, 'baseline');
  expect(expired).toMatchObject({ status: 'failed', businessStatus: { coding: [{ code: 'expired' }] } });
  expect(expired.statusReason?.text).toMatch(/Not answered/);

  // The 12-month Task of the ended episode is due at end + 12 months: invited then, and only then.
  const followUp = await taskAt(ended.episodeId, '12-months');
  const due = new Date(followUp.executionPeriod?.start as string);
  expect(await dispatcher.run(new Date(due.getTime() - 1000))).toMatchObject({ invited: 0 });
  expect(await dispatcher.run(due)).toMatchObject({ invited: 1 });
  expect(outbox(server).get(OutboxChannel.fileName(`${followUp.id}/1`))).toMatchObject({
    recipient: persons[0],
    questionnaire: 'https://norpain.no/fhir/Questionnaire/norpain-followup-12m|1.0.0',
    expires: followUp.executionPeriod?.end,
  });
});

test('each read of a national id for sending is audited, under the person, without the national id', async () => {
  const person = await register(server, clinic, persons[2]);
  const baseline = await taskAt(person.episodeId, 'baseline');
  await server.server.followUp.dispatcher.run(
    new Date(Date.parse(baseline.executionPeriod?.start as string) + 1000),
  );
  const reply = await fetch(`${server.baseUrl}/AuditEvent?_count=1000`, {
    headers: { authorization: `Bearer ${staff}` },
  });
  const text = await reply.text();
  const events = (JSON.parse(text) as Bundle<AuditEvent>).entry?.map((e) => e.resource as AuditEvent) ?? [];
  const reads = events.filter(
    (e) =>
      e.purposeOfEvent?.some((p) => p.coding?.some((c) => c.code === 'follow-up')) &&
      e.entity?.some((x) => x.what?.reference === `Patient/${person.patientId}`),
  );
  expect(reads).toHaveLength(1);
  expect(reads[0].agent?.[0].who?.identifier?.value ?? JSON.stringify(reads[0].agent)).toContain(
    'norpain-dispatch',
  );
  expect(text).not.toContain(persons[2]);
});

test('with FOLLOWUP_DISPATCH_SECONDS the server dispatches by itself', async () => {
  const { server: timed, clinic: timedClinic } = await startFollowUpServer({
    FOLLOWUP_DISPATCH_SECONDS: '1',
  });
  try {
    await register(timed, timedClinic, persons[0]);
    // The baseline is due at once: the next run (at most a second away) sends it.
    for (let i = 0; i < 100 && outbox(timed).size === 0; i++) await new Promise((r) => setTimeout(r, 200));
    expect([...outbox(timed).values()].map((m) => m.recipient)).toEqual([persons[0]]);
  } finally {
    await timed.stop();
  }
});
