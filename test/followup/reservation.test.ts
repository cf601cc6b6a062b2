import fs from 'node:fs';
import path from 'node:path';
import type { Parameters, Task } from '@medplum/fhirtypes';
import { reservation } from '../consent/fixtures';
import type { TestServer } from '../helpers/testServer';
import { call, DAY, ok, outbox, people, register, tasksOf, startFollowUpServer } from './fixtures';

/**
 * A reservation erases the person's Tasks and the dispatch ledger forgets their attempts: nothing is sent
 * to them afterwards, not even an attempt that was recorded before the reservation and never confirmed.
 */
let server: TestServer;
let clinic: string;
let staff: string;
const persons = people(4404, 2);

beforeAll(async () => {
  ({ server, clinic, staff } = await startFollowUpServer({ FOLLOWUP_REMINDER_DAYS: '7' }));
});
afterAll(() => server.stop());

const counts = (body: Parameters, name: string) =>
  Object.fromEntries(
    (body.parameter ?? [])
      .filter((p) => p.name === name)
      .map((p) => [
        p.part?.find((x) => x.name === 'type')?.valueCode,
        p.part?.find((x) => x.name === 'count')?.valueInteger,
      ]),
  );

test('after a reservation nothing is sent, not even a reminder recorded before it and never confirmed', async () => {
  const dispatcher = server.server.followUp.dispatcher;
  // Ended a month ago: a baseline Task and a 12-month Task, both open.
  const end = new Date(Date.now() - 30 * DAY).toISOString().slice(0, 10);
  const person = await register(server, clinic, persons[0], { start: '2024-03-04', end });
  const other = await register(server, clinic, persons[1]);
  const [task] = (await tasksOf(server, staff, person.episodeId)).filter(
    (t) => t.status === 'requested' && t.code?.coding?.[0].code === 'baseline',
  );
  const start = Date.parse(task.executionPeriod?.start as string);
  expect(await dispatcher.run(new Date(start + 1000))).toMatchObject({ invited: 2 });
  const before = [...outbox(server).keys()].sort();

  // The channel fails while the reminders are sent: both attempts stay recorded, unconfirmed.
  const dir = path.join(server.dataDir, 'outbox');
  fs.renameSync(dir, `${dir}.away`);
  fs.writeFileSync(dir, 'not a folder');
  expect(await dispatcher.run(new Date(start + 8 * DAY))).toMatchObject({ reminded: 0, failed: 2 });
  fs.rmSync(dir);
  fs.renameSync(`${dir}.away`, dir);

  const portal = await server.token('portal', { pid: person.fnr });
  const reply = ok(await call<Parameters>(server, portal, 'POST', 'Consent', reservation(person.fnr)), 201);
  expect(counts(reply, 'erased')).toMatchObject({ Task: 2, EpisodeOfCare: 1 });
  expect(reply.parameter?.find((p) => p.name === 'followUpsCancelled')?.valueInteger).toBe(2);
  expect(await tasksOf(server, staff, person.episodeId)).toEqual([]);

  // The next run delivers the other person's reminder again (same key) and nothing to the reserved person.
  const after = await dispatcher.run(new Date(start + 9 * DAY));
  expect(after).toMatchObject({ redelivered: 1, invited: 0, reminded: 0 });
  const otherTask = (await tasksOf(server, staff, other.episodeId)).find(
    (t: Task) => t.code?.coding?.[0].code === 'baseline',
  ) as Task;
  const sent = [...outbox(server).keys()].sort();
  expect(sent).toEqual([...before, `${otherTask.id}.2.json`].sort());
  for (const message of outbox(server).values()) {
    if (message.recipient === person.fnr) expect(message.attempt).toBe(1); // only the invitation before it
  }
  expect(await dispatcher.run(new Date(start + 30 * DAY))).toMatchObject({ invited: 0, redelivered: 0 });
  expect([...outbox(server).values()].filter((m) => m.recipient === person.fnr)).toHaveLength(1);
});
