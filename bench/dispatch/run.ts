/**
 * Follow-up dispatch benchmark (not a test): invitations per second through the AMQP 1.0 channel
 * (src/followup/amqp.ts) with publisher confirms, against the broker at AMQP_URL
 * (`export "$(scripts/ci/start-rabbitmq.sh | tail -1)"`):
 *
 *   AMQP_URL=… npx tsx bench/dispatch/run.ts [--invitations N] [--in-flight C]
 *
 * Each delivery resolves only on the broker's `accepted` disposition for its own message; C deliveries are
 * in flight at once over the channel's one connection (a dispatcher sending several Tasks at a time), and
 * once with one in flight for comparison. Then every message is read back (a consumer deduplicating by
 * message_id) to show that what was confirmed is in the queue. The queue is its own
 * (norpain.bench.…, removed by the broker a minute after use: scripts/ci/rabbitmq-definitions.json).
 * All national ids are synthetic.
 */
import { randomUUID } from 'node:crypto';
import { AmqpChannel } from '../../src/followup/amqp';
import { loadAmqpSettings } from '../../src/followup/amqpConfig';
import type { Invitation } from '../../src/followup/channel';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { createLogger } from '../../src/logging/logger';
import { InvitationConsumer } from '../../test/followup/amqpConsumer';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const INVITATIONS = arg('invitations', 20_000);
const IN_FLIGHT = arg('in-flight', 64);

function invitations(n: number): Invitation[] {
  const random = seededRandom(14);
  return Array.from({ length: n }, () => {
    const taskId = randomUUID();
    return {
      idempotencyKey: `${taskId}/1`,
      taskId,
      attempt: 1,
      kind: 'invitation',
      questionnaire: 'https://norpain.no/fhir/Questionnaire/norpain-followup-12m|1.0.0',
      nationalId: syntheticNationalId('fnr', { random }),
      expires: '2027-03-01T00:00:00.000Z',
    };
  });
}

async function timed(channel: AmqpChannel, batch: Invitation[], inFlight: number): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < batch.length) await channel.deliver(batch[next++]);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = batch.length / seconds;
  console.log(
    `${String(inFlight).padStart(3)} in flight: ${batch.length} invitations confirmed in ${seconds.toFixed(2)} s = ${rate.toFixed(0)} invitations/s`,
  );
  return rate;
}

async function main(): Promise<void> {
  const url = process.env.AMQP_URL;
  if (!url) throw new Error('AMQP_URL is not set: export "$(scripts/ci/start-rabbitmq.sh | tail -1)"');
  const queue = `norpain.bench.invitations-${randomUUID().slice(0, 8)}`;
  const settings = loadAmqpSettings({ AMQP_URL: url, AMQP_ADDRESS: `/queue/${queue}` });
  const channel = new AmqpChannel(settings, createLogger({ level: 'warn' }));
  console.log(`npx tsx bench/dispatch/run.ts --invitations ${INVITATIONS} --in-flight ${IN_FLIGHT}`);
  console.log(`broker ${new URL(url).host}, queue ${queue}, durable messages`);
  const sequential = invitations(Math.min(2000, INVITATIONS));
  const pipelined = invitations(INVITATIONS);
  try {
    await channel.deliver(invitations(1)[0]); // connected, queue declared
    await timed(channel, sequential, 1);
    await timed(channel, pipelined, IN_FLIGHT);
  } finally {
    await channel.close();
  }
  const consumer = await InvitationConsumer.open(settings, queue);
  const expected = 1 + sequential.length + pipelined.length;
  const read = await consumer.drain({ count: expected, idleMs: 1000, timeoutMs: 120_000 });
  await consumer.close();
  console.log(
    `read back ${read.length} distinct messages of ${expected} confirmed (${consumer.duplicates} duplicates)`,
  );
  if (read.length !== expected) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
