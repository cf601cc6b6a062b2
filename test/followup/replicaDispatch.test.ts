import { dispatchCommand } from '../../src/followup/commands';
import { createTestSchema, dropTestSchema, schemaUrl, stateDatabaseUrl } from '../helpers/state';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { channelSettings, describeWithBroker, testQueue } from './amqpBroker';
import { InvitationConsumer } from './amqpConsumer';
import { people, register, tasksOf, timePointOf } from './fixtures';

/**
 * `norpain dispatch` run on two replicas at once (STATE=postgres: one ledger, one set of locks) sends each
 * Task's invitation once: the real RabbitMQ's consumer sees every invitation once and no message twice,
 * not even with the same message_id. Each command opens the state on connections of its own, as a process
 * on another replica would.
 */
jest.setTimeout(180_000);

const databaseUrl = stateDatabaseUrl;
if (databaseUrl) {
  describeWithBroker('norpain dispatch on two replicas at once (STATE=postgres, real RabbitMQ)', (url) => {
    let server: TestServer;
    let schema: string;
    const queue = testQueue('replicas');
    const settings = channelSettings(url, { AMQP_ADDRESS: queue.address });
    const env: Record<string, string> = {
      FOLLOWUP_CHANNEL: 'amqp',
      AMQP_URL: url,
      AMQP_ADDRESS: queue.address,
      FOLLOWUP_DISPATCH_SECONDS: '0',
    };

    beforeAll(async () => {
      schema = await createTestSchema(databaseUrl);
      Object.assign(env, { STATE: 'postgres', DATABASE_URL: schemaUrl(databaseUrl, schema) });
      server = await startTestServer(env);
    });
    afterAll(async () => {
      await server?.stop();
      await dropTestSchema(databaseUrl, schema);
      queue.dispose();
    });

    test('every Task invited once, none twice', async () => {
      const clinic = await server.token('clinic');
      const staff = await server.token('registry-admin');
      const registered = [];
      for (const fnr of people(4411, 8)) registered.push(await register(server, clinic, fnr));
      const tasks: string[] = [];
      for (const who of registered) {
        const task = (await tasksOf(server, staff, who.episodeId)).find((t) => timePointOf(t) === 'baseline');
        if (task?.id !== undefined) tasks.push(task.id);
      }
      expect(tasks).toHaveLength(8);

      const cliEnv = { ...env, DATA_DIR: server.dataDir, NODE_ENV: 'development', LOG_LEVEL: 'warn' };
      const now = new Date(Date.now() + 1000).toISOString();
      const codes = await Promise.all([
        dispatchCommand.run(['--now', now], cliEnv),
        dispatchCommand.run(['--now', now], cliEnv),
      ]);
      expect(codes).toEqual([0, 0]);

      const consumer = await InvitationConsumer.open(settings, queue.name);
      const messages = await consumer.drain({ count: tasks.length + 1, idleMs: 2000, timeoutMs: 30_000 });
      await consumer.close();
      expect(messages.map((m) => m.messageId).sort()).toEqual(tasks.map((task) => `${task}/1`).sort());
      expect(consumer.duplicates).toBe(0);
    });
  });
} else {
  describe.skip('norpain dispatch on two replicas — SKIPPED, STATE_DATABASE_URL is not set', () => {
    test('dispatch', () => undefined);
  });
}
