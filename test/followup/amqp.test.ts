import { randomUUID } from 'node:crypto';
import { AmqpChannel, AmqpDeliveryError } from '../../src/followup/amqp';
import type { Invitation } from '../../src/followup/channel';
import { syntheticNationalId } from '../../src/identity/synthetic';
import { freePort } from '../crash/harness';
import {
  channelSettings,
  describeWithBroker,
  publishRaw,
  rabbitmqctl,
  startBroker,
  stopBroker,
  testQueue,
} from './amqpBroker';
import { invitationOf, InvitationConsumer } from './amqpConsumer';

/**
 * The AMQP 1.0 follow-up channel against the real RabbitMQ of scripts/ci/start-rabbitmq.sh: confirms,
 * retries, dead-lettering and a broker restart under load, read back by a consumer that deduplicates by
 * message_id as docs/followup.md asks of helsenorge-side consumers.
 */
function invitation(overrides: Partial<Invitation> = {}): Invitation {
  const taskId = overrides.taskId ?? randomUUID();
  const attempt = overrides.attempt ?? 1;
  return {
    idempotencyKey: `${taskId}/${attempt}`,
    taskId,
    attempt,
    kind: attempt === 1 ? 'invitation' : 'reminder',
    questionnaire: 'http://norpain.no/fhir/Questionnaire/norpain-baseline|1.0.0',
    nationalId: syntheticNationalId('fnr'),
    expires: '2027-03-01T00:00:00.000Z',
    ...overrides,
  };
}

// Broker restarts run rabbitmqctl, slow on a loaded CI machine: these tests get more than Jest's minute.
jest.setTimeout(240_000);

describeWithBroker('AMQP follow-up channel (real RabbitMQ)', (url) => {
  const disposals: Array<() => void> = [];
  const channels: AmqpChannel[] = [];

  function setUp(label: string, env: Record<string, string> = {}) {
    const queue = testQueue(label);
    disposals.push(queue.dispose);
    const settings = channelSettings(url, { AMQP_ADDRESS: queue.address, ...env });
    const channel = new AmqpChannel(settings);
    channels.push(channel);
    return { queue, settings, channel };
  }

  let stopped = false;
  const outage = {
    begin: () => {
      stopped = true;
      stopBroker();
    },
    end: () => {
      startBroker();
      stopped = false;
    },
  };

  afterEach(async () => {
    // A test that failed with the broker stopped must not leave it stopped for the next.
    if (stopped) outage.end();
    await Promise.all(channels.splice(0).map((channel) => channel.close()));
  });

  afterAll(() => {
    for (const dispose of disposals) dispose();
  });

  test('deliver resolves on the confirm, and the queue holds the message with its key and documented body', async () => {
    const { queue, settings, channel } = setUp('deliver');
    const sent = invitation();
    await channel.deliver(sent);

    const consumer = await InvitationConsumer.open(settings, queue.name);
    const [received, ...rest] = await consumer.drain({ count: 1 });
    await consumer.close();
    expect(rest).toEqual([]);
    expect(received.messageId).toBe(sent.idempotencyKey);
    expect(received.durable).toBe(true);
    expect(received.contentType).toBe('application/json');
    expect(received.properties).toEqual({ kind: 'invitation', attempt: 1, task: sent.taskId });
    expect(JSON.parse(received.text)).toEqual({
      type: 'norpain-follow-up-invitation',
      version: 1,
      idempotencyKey: sent.idempotencyKey,
      kind: 'invitation',
      attempt: 1,
      task: `Task/${sent.taskId}`,
      questionnaire: sent.questionnaire,
      recipient: sent.nationalId,
      expires: sent.expires,
    });
  });

  test('the same attempt delivered twice reaches the consumer once: it drops the copy by message_id', async () => {
    const { queue, settings, channel } = setUp('dedup');
    const first = invitation();
    const reminder = invitation({ taskId: first.taskId, attempt: 2 });
    await channel.deliver(first);
    await channel.deliver(first);
    await channel.deliver(reminder);

    const consumer = await InvitationConsumer.open(settings, queue.name);
    const received = await consumer.drain({ count: 2 });
    await consumer.close();
    expect(received.map((m) => m.messageId)).toEqual([first.idempotencyKey, reminder.idempotencyKey]);
    expect(consumer.duplicates).toBe(1);
  });

  test('a stopped broker: deliver never resolves, it rejects with the reason once the retries are spent', async () => {
    const { queue, settings, channel } = setUp('stopped');
    outage.begin();
    const sent = invitation();
    const error = await channel.deliver(sent).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(AmqpDeliveryError);
    expect((error as Error).message).toMatch(
      /^not confirmed after 4 publishes \(last: .+\); and could not be dead-lettered/,
    );
    // The reason is for the dispatcher's record and logs: nothing about the person.
    expect((error as Error).message).not.toContain(sent.nationalId);

    // Once the broker is back the same channel reconnects, and the queue holds only what it confirmed.
    outage.end();
    const next = invitation();
    await channel.deliver(next);
    const consumer = await InvitationConsumer.open(settings, queue.name);
    const received = await consumer.drain({ count: 1 });
    await consumer.close();
    expect(received.map((m) => m.messageId)).toEqual([next.idempotencyKey]);
  });

  test('closed while deliver retries: deliver rejects with that reason instead of retrying on', async () => {
    // Nothing listens on this port: every publish fails to connect.
    const channel = new AmqpChannel(
      channelSettings(`amqp://guest:guest@127.0.0.1:${await freePort()}`, {
        AMQP_RETRY_ATTEMPTS: '1000',
        AMQP_RETRY_INITIAL_MS: '50',
        AMQP_RETRY_MAX_MS: '100',
      }),
    );
    const delivering = channel.deliver(invitation()).then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await channel.close();
    expect(await delivering).toBe('the AMQP channel was closed before the broker confirmed');
  });

  test('a broker that comes back while deliver retries: deliver resolves, and the message is there once', async () => {
    const { queue, settings, channel } = setUp('comes-back', {
      AMQP_RETRY_ATTEMPTS: '40',
      AMQP_RETRY_INITIAL_MS: '100',
      AMQP_RETRY_MAX_MS: '500',
    });
    await channel.deliver(invitation()); // connected before the outage
    outage.begin();
    const sent = invitation();
    let resolved = false;
    const delivering = channel.deliver(sent).then(() => (resolved = true));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(resolved).toBe(false);
    outage.end();
    await delivering;

    const consumer = await InvitationConsumer.open(settings, queue.name);
    const received = await consumer.drain({ count: 2 });
    await consumer.close();
    expect(received.map((m) => m.messageId)).toContain(sent.idempotencyKey);
    expect(received).toHaveLength(2);
  });

  test('a broker restart in the middle of a batch loses nothing: every invitation is in the queue', async () => {
    const { queue, settings, channel } = setUp('restart', {
      AMQP_RETRY_ATTEMPTS: '60',
      AMQP_RETRY_INITIAL_MS: '100',
      AMQP_RETRY_MAX_MS: '1000',
    });
    const batch = Array.from({ length: 400 }, () => invitation());
    let confirmed = 0;
    const delivering = Promise.all(
      batch.map(async (sent, i) => {
        // Spread over time, so that some are confirmed, some in flight and some not yet sent at the stop.
        await new Promise((resolve) => setTimeout(resolve, i * 5));
        await channel.deliver(sent);
        confirmed++;
      }),
    );
    while (confirmed < 50) await new Promise((resolve) => setTimeout(resolve, 10));
    outage.begin();
    const confirmedAtStop = confirmed;
    outage.end();
    await delivering;
    expect(confirmedAtStop).toBeLessThan(batch.length);

    const consumer = await InvitationConsumer.open(settings, queue.name);
    const received = await consumer.drain({ count: batch.length, idleMs: 1000 });
    await consumer.close();
    expect(new Set(received.map((m) => m.messageId))).toEqual(
      new Set(batch.map((sent) => sent.idempotencyKey)),
    );
    expect(received).toHaveLength(batch.length);
  });

  test('a message the broker refuses every time ends in the dead-letter address, and deliver rejects', async () => {
    const deadLetters = testQueue('refused-dead-letter');
    disposals.push(deadLetters.dispose);
    // RabbitMQ 3.10's AMQP 1.0 plugin answers a nack by dropping the connection (seconds each): two tries.
    const { queue, settings, channel } = setUp('refused', {
      AMQP_DEAD_LETTER_ADDRESS: deadLetters.address,
      AMQP_RETRY_ATTEMPTS: '2',
    });
    // A full queue that refuses publishes (max-length 0, reject-publish): RabbitMQ nacks every message.
    const policy = `norpain-test-full-${randomUUID().slice(0, 8)}`;
    rabbitmqctl(
      'set_policy',
      '--apply-to',
      'queues',
      '--priority',
      '10',
      policy,
      `^${queue.name.replace(/\./g, '\\.')}$`,
      '{"max-length":0,"overflow":"reject-publish"}',
    );
    try {
      const sent = invitation();
      const error = await channel.deliver(sent).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(error).toBeInstanceOf(AmqpDeliveryError);
      expect(error?.message).toContain(`dead-lettered to ${deadLetters.address}`);

      const consumer = await InvitationConsumer.open(settings, deadLetters.name);
      const [dead, ...rest] = await consumer.drain({ count: 1 });
      await consumer.close();
      expect(rest).toEqual([]);
      expect(dead.messageId).toBe(sent.idempotencyKey);
      expect(invitationOf(dead.text)?.idempotencyKey).toBe(sent.idempotencyKey);
      expect(String(dead.properties['dead-letter-reason'])).toMatch(/^not confirmed after 2 publishes/);
    } finally {
      rabbitmqctl('clear_policy', policy);
    }
  });

  test('a poison message a consumer rejects goes to the dead-letter queue, not away', async () => {
    const { queue, settings, channel } = setUp('poison');
    const good = invitation();
    await channel.deliver(good);
    // Something in the invitation queue that is not an invitation message, from another publisher.
    const poisonId = `poison-${randomUUID()}`;
    await publishRaw(settings, queue.address, poisonId, 'not json');

    const consumer = await InvitationConsumer.open(settings, queue.name, { validate: true });
    const received = await consumer.drain({ count: 1 });
    await consumer.close();
    expect(received.map((m) => m.messageId)).toEqual([good.idempotencyKey]);
    expect(consumer.rejected).toBe(1);

    // The shared dead-letter queue of start-rabbitmq.sh (its policy covers every norpain.invitations… queue).
    const deadLetters = await InvitationConsumer.open(settings, 'norpain.invitations.dead-letter');
    await deadLetters.drain({ idleMs: 1000 });
    await deadLetters.close();
    expect(deadLetters.received.map((m) => m.messageId)).toContain(poisonId);
  });
});
