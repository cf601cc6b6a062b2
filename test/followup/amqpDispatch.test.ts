import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { freePort, ServeProcess, tempDataDir } from '../crash/harness';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { channelSettings, describeWithBroker, testQueue } from './amqpBroker';
import { invitationOf, InvitationConsumer } from './amqpConsumer';
import { call, DAY, people, register, tasksOf, timePointOf, type Registered } from './fixtures';
import { reservation } from '../consent/fixtures';

/**
 * The follow-up end to end with FOLLOWUP_CHANNEL=amqp and the real RabbitMQ of scripts/ci/start-rabbitmq.sh:
 * episodes in through HTTP, the dispatcher publishes, and a consumer that deduplicates by message_id (as
 * docs/followup.md asks of helsenorge's side) reads back exactly the expected messages; a reservation stops
 * every further message; a server killed with SIGKILL while it publishes sends no second distinct message
 * and loses none.
 */
// Broker restarts run rabbitmqctl, slow on a loaded CI machine: these tests get more than Jest's minute.
jest.setTimeout(240_000);

describeWithBroker('Follow-up dispatch through the AMQP channel (real RabbitMQ)', (url) => {
  const disposals: Array<() => void> = [];
  afterAll(() => {
    for (const dispose of disposals) dispose();
  });

  function queueFor(label: string) {
    const queue = testQueue(label);
    disposals.push(queue.dispose);
    return { queue, settings: channelSettings(url, { AMQP_ADDRESS: queue.address }) };
  }

  const amqpEnv = (address: string): Record<string, string> => ({
    FOLLOWUP_CHANNEL: 'amqp',
    AMQP_URL: url,
    AMQP_ADDRESS: address,
    AMQP_RETRY_INITIAL_MS: '50',
    AMQP_RETRY_MAX_MS: '500',
  });

  const baselineTask = async (server: TestServer, staff: string, who: Registered): Promise<string> => {
    const task = (await tasksOf(server, staff, who.episodeId)).find((t) => timePointOf(t) === 'baseline');
    if (task?.id === undefined) throw new Error(`no baseline Task for episode ${who.episodeId}`);
    return task.id;
  };

  describe('in-process server', () => {
    let server: TestServer;
    const { queue, settings } = queueFor('dispatch');

    beforeAll(async () => {
      server = await startTestServer(amqpEnv(queue.address));
    });
    afterAll(async () => {
      await server.stop();
    });

    test('episodes in, dispatch, exactly the expected messages in the queue; a reservation stops the rest', async () => {
      const clinic = await server.token('clinic');
      const staff = await server.token('registry-admin');
      const [first, second, third, refused] = people(4311, 4);
      const invited = [
        await register(server, clinic, first),
        await register(server, clinic, second),
        await register(server, clinic, third),
      ];
      // Right to care not granted: no baseline Task, so no message.
      await register(server, clinic, refused, { granted: false });
      const tasks = await Promise.all(invited.map((who) => baselineTask(server, staff, who)));
      const dispatcher = server.server.followUp.dispatcher;
      const now = Date.now() + 1000;

      expect(await dispatcher.run(new Date(now))).toMatchObject({ invited: 3, failed: 0 });
      // Nothing more is due at the same time.
      expect(await dispatcher.run(new Date(now + 1000))).toMatchObject({ invited: 0, reminded: 0 });
      const consumer = await InvitationConsumer.open(settings, queue.name);
      const messages = await consumer.drain({ count: 3, idleMs: 1000 });
      expect(messages.map((m) => m.messageId).sort()).toEqual(tasks.map((task) => `${task}/1`).sort());
      expect(consumer.duplicates).toBe(0);
      for (const [i, task] of tasks.entries()) {
        const body = invitationOf(messages.find((m) => m.messageId === `${task}/1`)?.text ?? '');
        expect(body).toMatchObject({
          kind: 'invitation',
          attempt: 1,
          task: `Task/${task}`,
          recipient: invited[i].fnr,
        });
        expect(body?.questionnaire).toMatch(/norpain-baseline\|/);
      }

      // The first person reserves themselves: the reminders go to the other two only.
      const portal = await server.token('portal', { pid: first });
      expect((await call(server, portal, 'POST', 'Consent', reservation(first))).status).toBe(201);
      expect(await dispatcher.run(new Date(now + 15 * DAY))).toMatchObject({ reminded: 2, failed: 0 });
      const after = await consumer.drain({ count: 5, idleMs: 1000 });
      await consumer.close();
      expect(
        after
          .slice(3)
          .map((m) => m.messageId)
          .sort(),
      ).toEqual([`${tasks[1]}/2`, `${tasks[2]}/2`].sort());
      expect(after.slice(3).some((m) => m.text.includes(first))).toBe(false);
    });
  });

  test('kill -9 of the server while it publishes: no second distinct message, none lost', async () => {
    const { queue, settings } = queueFor('crash');
    const dataDir = tempDataDir();
    const persons = people(4321, 12);
    const port = await freePort();

    // The episodes come in with dispatch off, so that every message is published by the server killed below.
    const intake = new ServeProcess(dataDir, port, {
      ...amqpEnv(queue.address),
      FOLLOWUP_DISPATCH_SECONDS: '0',
    });
    await intake.start();
    const clinic = await intake.token('clinic');
    const registered: Registered[] = [];
    for (const fnr of persons) registered.push(await register(intake.asTestServer, clinic, fnr));
    await intake.kill();

    // The server that dispatches at start is killed the moment the consumer sees its third message: the
    // broker hands a message to its consumer before it confirms it to the publisher (it confirms once the
    // message is on disk), so the attempts just published are likely not yet recorded as sent.
    const env = { ...amqpEnv(queue.address), FOLLOWUP_DISPATCH_SECONDS: '1' };
    const dispatching = new ServeProcess(dataDir, port, env);
    const seenAtKill = new Set<string>();
    let killed: Promise<void> | undefined;
    const consumer = await InvitationConsumer.open(settings, queue.name, {
      onNew: () => {
        if (killed === undefined && consumer.received.length >= 3) {
          killed = dispatching.kill();
          for (const m of consumer.received) seenAtKill.add(m.messageId);
        }
      },
    });
    // start() may see the server die before it is ready: the kill is what this test is about.
    await dispatching.start().catch(() => undefined);
    while (killed === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    await killed;
    const unconfirmed = unconfirmedAttempts(dataDir);

    // Started again, the server delivers the unconfirmed attempts with their keys and invites the rest.
    const again = new ServeProcess(dataDir, port, env);
    await again.start();
    const messages = await consumer.drain({ count: persons.length, idleMs: 2000, timeoutMs: 60_000 });
    await consumer.close();
    const staff = await again.token('registry-admin');
    const tasks = await Promise.all(registered.map((who) => baselineTask(again.asTestServer, staff, who)));
    await again.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });

    expect(messages.map((m) => m.messageId).sort()).toEqual(tasks.map((task) => `${task}/1`).sort());
    // Whatever was published twice came with the same message_id (dropped by the consumer), never as a new attempt.
    const publishedNotRecorded = [...unconfirmed].filter((key) => seenAtKill.has(key));
    expect(consumer.duplicates).toBeGreaterThanOrEqual(publishedNotRecorded.length);
    console.log(
      `kill -9 after ${seenAtKill.size} messages: ${publishedNotRecorded.length} published but not recorded as sent, ${consumer.duplicates} duplicate(s) dropped by the consumer`,
    );
  });
});

/** The attempts the dispatch ledger holds as recorded but not confirmed sent (read-only, as an operator). */
function unconfirmedAttempts(dataDir: string): Set<string> {
  const db = new Database(path.join(dataDir, 'followup', 'dispatch.sqlite'), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    const rows = db.prepare('SELECT idempotency_key FROM attempt WHERE sent_at IS NULL').all() as Array<{
      idempotency_key: string;
    }>;
    return new Set(rows.map((row) => row.idempotency_key));
  } finally {
    db.close();
  }
}
