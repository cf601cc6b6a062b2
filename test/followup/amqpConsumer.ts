import { create_container, type Connection, type EventContext, type Message, type Receiver } from 'rhea';
import type { AmqpSettings } from '../../src/followup/amqpConfig';
import type { InvitationMessage } from '../../src/followup/message';

const INVITATION: InvitationMessage['type'] = 'norpain-follow-up-invitation';

/** One message as a consumer read it. */
export interface Received {
  messageId: string;
  properties: Record<string, unknown>;
  durable: boolean;
  contentType: string | undefined;
  text: string;
}

/**
 * A consumer on the helsenorge side of the channel, as docs/followup.md asks consumers to behave: it
 * deduplicates by `message_id` (a channel may publish one message twice: a crash between the broker's
 * confirm and the dispatcher's record, or a confirm lost with the connection), records a message before
 * it accepts it, and rejects what is not an invitation message (a poison message), which the broker's
 * dead-letter policy then moves to the dead-letter queue instead of dropping it.
 */
export class InvitationConsumer {
  /** Distinct messages, in the order first read. */
  readonly received: Received[] = [];
  /** Copies of a message_id already read, dropped. */
  duplicates = 0;
  /** Messages rejected as not invitation messages. */
  rejected = 0;
  private readonly seen = new Set<string>();
  private lastArrival = Date.now();

  private constructor(
    private readonly connection: Connection,
    private readonly receiver: Receiver,
    private readonly onNew: ((message: Received) => void) | undefined,
    /** Rejects what is not an invitation message, taking one message at a time (see `open`). */
    private readonly validate: boolean,
  ) {}

  /** Reads from the queue, declaring it durable (as the channel's `/queue/NAME` does) if it is not there yet. */
  static async open(
    settings: AmqpSettings,
    queue: string,
    options: { validate?: boolean; onNew?: (message: Received) => void } = {},
  ): Promise<InvitationConsumer> {
    const connection = create_container({ id: 'helsenorge-test-consumer' }).connect({
      ...settings.connection,
      reconnect: false,
    });
    // A validating consumer takes one message at a time: rhea 3.0.5 writes the dispositions of consecutive
    // deliveries settled in the same turn as one range with the first one's outcome, so an accept followed
    // by a reject would accept the poison message too (lost instead of dead-lettered). One that accepts
    // everything may have many in flight (rhea keeps its credit window topped up).
    const validate = options.validate === true;
    const receiver = connection.open_receiver({
      source: { address: `/queue/${queue}`, durable: 2 },
      autoaccept: false,
      credit_window: validate ? 0 : 500,
    });
    if (validate) receiver.add_credit(1);
    const consumer = new InvitationConsumer(connection, receiver, options.onNew, validate);
    receiver.on('message', (context: EventContext) => consumer.take(context));
    await new Promise<void>((resolve, reject) => {
      receiver.once('receiver_open', () => resolve());
      connection.once('receiver_error', (context: EventContext) => reject(context.receiver?.error));
      connection.once('disconnected', (context: EventContext) => reject(context.error));
    });
    return consumer;
  }

  /** Reads until nothing has arrived for `idleMs` (and at least `count` distinct messages, if given). */
  async drain(options: { idleMs?: number; count?: number; timeoutMs?: number } = {}): Promise<Received[]> {
    const { idleMs = 500, count = 0, timeoutMs = 30_000 } = options;
    const until = Date.now() + timeoutMs;
    this.lastArrival = Date.now();
    while (Date.now() < until) {
      if (this.received.length >= count && Date.now() - this.lastArrival >= idleMs) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.received;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.connection.once('connection_close', () => resolve()));
    this.receiver.close();
    this.connection.close();
    await closed;
  }

  private take(context: EventContext): void {
    this.lastArrival = Date.now();
    const message = context.message as Message;
    const delivery = context.delivery;
    if (delivery === undefined) return;
    const messageId = String(message.message_id);
    const text = bodyText(message);
    if (this.validate && invitationOf(text) === undefined) {
      this.rejected++;
      delivery.reject({ condition: 'amqp:decode-error', description: 'not a NorPain invitation message' });
      this.nextOne();
      return;
    }
    if (this.seen.has(messageId)) {
      this.duplicates++;
    } else {
      this.seen.add(messageId);
      const received: Received = {
        messageId,
        properties: message.application_properties ?? {},
        durable: message.durable === true,
        contentType: message.content_type,
        text,
      };
      this.received.push(received);
      this.onNew?.(received);
    }
    // Recorded first, accepted after: a consumer crash in between gets the message again, never loses it.
    delivery.accept();
    this.nextOne();
  }

  private nextOne(): void {
    if (this.validate) this.receiver.add_credit(1);
  }
}

/** The invitation message in a body, or undefined if it is not one. */
export function invitationOf(text: string): InvitationMessage | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<InvitationMessage>;
    return parsed.type === INVITATION && typeof parsed.idempotencyKey === 'string'
      ? (parsed as InvitationMessage)
      : undefined;
  } catch {
    return undefined;
  }
}

function bodyText(message: Message): string {
  const body = message.body as { content?: Buffer } | Buffer | string | undefined;
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return body?.content?.toString('utf8') ?? '';
}
