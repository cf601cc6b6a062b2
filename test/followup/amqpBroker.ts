import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { create_container, type EventContext } from 'rhea';
import { loadAmqpSettings, type AmqpSettings } from '../../src/followup/amqpConfig';

/**
 * The RabbitMQ broker of scripts/ci/start-rabbitmq.sh, as the follow-up channel's tests use it: its URL
 * (AMQP_URL, which .ci/run exports) and control of the node (stopping and starting it, per-test queues and
 * policies) through the same scripts, so a test can take the real broker away under the channel.
 */
export const AMQP_URL = process.env.AMQP_URL;
const SCRIPTS = path.join(__dirname, '..', '..', 'scripts', 'ci');

/**
 * `describe` when AMQP_URL is set; in CI a missing broker fails instead of passing silently; elsewhere the
 * suite is skipped under a name that says how to run it.
 */
export function describeWithBroker(name: string, body: (url: string) => void): void {
  if (AMQP_URL !== undefined && AMQP_URL !== '') {
    describe(name, () => body(AMQP_URL));
  } else if (process.env.CI === 'true') {
    test(`${name}: AMQP_URL is set in CI (scripts/ci/start-rabbitmq.sh prints it)`, () => {
      throw new Error('CI=true but AMQP_URL is not set: the AMQP channel suite cannot run');
    });
  } else {
    describe.skip(`${name} — SKIPPED, AMQP_URL is not set (export "$(scripts/ci/start-rabbitmq.sh | tail -1)")`, () => {
      test('broker', () => undefined);
    });
  }
}

/** rabbitmqctl on the CI node (scripts/ci/rabbitmq-env.sh says which), returning its output. */
export function rabbitmqctl(...args: string[]): string {
  return execFileSync(
    'bash',
    ['-c', `source "${SCRIPTS}/rabbitmq-env.sh" && rabbitmq_ctl "$@"`, 'rabbitmqctl', ...args],
    { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** A broker outage as clients see it: the broker application stops, its durable queues stay on disk. */
export function stopBroker(): void {
  execFileSync(path.join(SCRIPTS, 'stop-rabbitmq.sh'), ['--app'], { stdio: 'ignore', timeout: 60_000 });
}

export function startBroker(): void {
  execFileSync(path.join(SCRIPTS, 'start-rabbitmq.sh'), [], { stdio: 'ignore', timeout: 180_000 });
}

/**
 * A queue of the test's own, named so the dead-letter policy of start-rabbitmq.sh covers it, and deleted
 * again by `dispose`, so tests never read what another test (or run) left in the shared queue.
 */
export function testQueue(label: string): { name: string; address: string; dispose: () => void } {
  const name = `norpain.invitations.test-${label}-${randomUUID().slice(0, 8)}`;
  return {
    name,
    address: `/queue/${name}`,
    dispose: () => {
      // A test that failed early may not have created it.
      if (rabbitmqctl('list_queues', '--quiet', '--no-table-headers', 'name').split('\n').includes(name)) {
        rabbitmqctl('delete_queue', name);
      }
    },
  };
}

/** Channel settings for a test: the broker of AMQP_URL, the given queue, short and bounded retries. */
export function channelSettings(url: string, env: Record<string, string>): AmqpSettings {
  return loadAmqpSettings({
    AMQP_URL: url,
    AMQP_RETRY_ATTEMPTS: '4',
    AMQP_RETRY_INITIAL_MS: '50',
    AMQP_RETRY_MAX_MS: '400',
    AMQP_CONFIRM_TIMEOUT_MS: '5000',
    ...env,
  });
}

/** Another publisher on the broker: one message with this id and text, resolved on the broker's accept. */
export async function publishRaw(
  settings: AmqpSettings,
  address: string,
  messageId: string,
  text: string,
): Promise<void> {
  const connection = create_container().connect({ ...settings.connection, reconnect: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const sender = connection.open_sender({ target: { address, durable: 2 } });
      sender.once('sendable', () => sender.send({ message_id: messageId, durable: true, body: text }));
      sender.once('accepted', () => resolve());
      for (const event of ['rejected', 'released', 'modified', 'sender_error', 'disconnected'] as const) {
        connection.once(event, (context: EventContext) =>
          reject(new Error(`${event}: ${String(context.error)}`)),
        );
      }
    });
  } finally {
    connection.close();
  }
}
