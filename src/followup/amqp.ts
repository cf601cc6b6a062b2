import { setTimeout as sleep } from 'node:timers/promises';
import {
  create_container,
  message as amqpMessage,
  type Connection,
  type Container,
  type Delivery,
  type EventContext,
  type Message,
  type Sender,
} from 'rhea';
import { getLogger, type Logger } from '../logging/logger';
import type { AmqpSettings } from './amqpConfig';
import type { Channel, Invitation } from './channel';
import { invitationMessage } from './message';

/**
 * The follow-up channel over AMQP 1.0 (DESIGN §9; helsenorge's message delivery is AMQP): each invitation
 * is one durable message to the configured address, its `message_id` the invitation's idempotency key,
 * its body the invitation message of docs/followup.md. `deliver` resolves only on the broker's `accepted`
 * disposition, which RabbitMQ sends once the message is safely in its queue (a publisher confirm). A
 * message the broker releases or modifies, a lost connection or no disposition in time is published again
 * with exponential backoff (the same message_id, so a consumer drops the copy if the first one did
 * arrive); one the broker rejects, or that is still not confirmed after the last try, is put on the
 * dead-letter address and `deliver` rejects with the reason the dispatcher records. A lost connection is
 * replaced by the next publish, so the channel carries on after a broker restart.
 */
export class AmqpChannel implements Channel {
  readonly name = 'amqp';
  private readonly container: Container = create_container({ id: 'norpain-followup' });
  private link: Promise<BrokerLink> | undefined;
  private closed = false;

  constructor(
    private readonly settings: AmqpSettings,
    private readonly log: Logger = getLogger(),
  ) {}

  async deliver(invitation: Invitation): Promise<void> {
    const message = toAmqpMessage(invitation);
    const { attempts } = this.settings.retry;
    let reason = '';
    for (let publish = 1; publish <= attempts; publish++) {
      if (publish > 1) await sleep(this.backoff(publish - 1));
      if (this.closed) throw new AmqpDeliveryError('the AMQP channel was closed before the broker confirmed');
      const outcome = await this.publish(this.settings.address, message);
      if (outcome.settled === 'accepted') return;
      reason = outcome.reason;
      if (outcome.settled === 'rejected') {
        throw new AmqpDeliveryError(await this.deadLetter(message, `the broker rejected it (${reason})`));
      }
      // The key names the Task and attempt, nothing about the person; the body is never logged.
      this.log.warn('follow-up message not confirmed by the AMQP broker', {
        key: invitation.idempotencyKey,
        publish,
        attempts,
        reason,
      });
    }
    throw new AmqpDeliveryError(
      await this.deadLetter(message, `not confirmed after ${attempts} publishes (last: ${reason})`),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const link = this.link;
    this.link = undefined;
    await link?.then(
      (open) => open.close(),
      () => undefined,
    );
  }

  /** Exponential, capped, with jitter so that many deliveries cut off together do not return together. */
  private backoff(retry: number): number {
    const { initialDelayMs, maxDelayMs } = this.settings.retry;
    return Math.min(maxDelayMs, initialDelayMs * 2 ** (retry - 1)) * (0.5 + Math.random() / 2);
  }

  /** Puts the message where operators look, with the reason; returns the reason for the dispatcher. */
  private async deadLetter(message: Message, reason: string): Promise<string> {
    const outcome = await this.publish(this.settings.deadLetterAddress, {
      ...message,
      application_properties: { ...message.application_properties, 'dead-letter-reason': reason },
    });
    const where =
      outcome.settled === 'accepted'
        ? `dead-lettered to ${this.settings.deadLetterAddress}`
        : `and could not be dead-lettered (${outcome.reason})`;
    this.log.error('follow-up message not delivered', { key: String(message.message_id), reason, where });
    return `${reason}; ${where}`;
  }

  private async publish(address: string, message: Message): Promise<Outcome> {
    // A closed channel opens no connection again (it would never be closed).
    if (this.closed) return { settled: 'retry', reason: 'the AMQP channel is closed' };
    let link: BrokerLink;
    try {
      link = await this.connected();
    } catch (err) {
      return { settled: 'retry', reason: `no connection to the broker: ${(err as Error).message}` };
    }
    return link.publish(address, message, this.settings.confirmTimeoutMs);
  }

  /** The open connection, or a new one when there is none (at first, or after the last one was lost). */
  private connected(): Promise<BrokerLink> {
    if (this.link === undefined) {
      const link = new BrokerLink(this.container, this.settings, () => {
        if (this.link === opened) this.link = undefined;
      });
      const opened = link.ready.then(() => link);
      this.link = opened;
    }
    return this.link;
  }
}

/** Why an invitation was not delivered: no body, no national id, so the dispatcher may record it. */
export class AmqpDeliveryError extends Error {
  override readonly name = 'AmqpDeliveryError';
}

type Outcome = { settled: 'accepted' } | { settled: 'retry' | 'rejected'; reason: string };

/** Connection, session and link events after which the connection is given up and replaced. */
const LOSS_EVENTS = [
  'disconnected',
  'connection_error',
  'connection_close',
  'session_error',
  'session_close',
  'sender_error',
  'sender_close',
  'protocol_error',
  'error',
] as const;

/** One AMQP connection with a sender per address; once lost it stays lost and the channel opens another. */
class BrokerLink {
  readonly ready: Promise<void>;
  private readonly connection: Connection;
  private readonly senders = new Map<string, Sender>();
  /** Sent and waiting for the broker's disposition. */
  private readonly unsettled = new Map<Delivery, (outcome: Outcome) => void>();
  /** Waiting for link credit (or for the loss of the connection). */
  private readonly waiting = new Set<() => void>();
  private lost: string | undefined;
  private failReady: (reason: string) => void = () => undefined;

  constructor(
    container: Container,
    settings: AmqpSettings,
    private readonly onLoss: () => void,
  ) {
    // No reconnect inside rhea: a lost connection fails what was in flight, which the channel publishes again.
    this.connection = container.connect({ ...settings.connection, reconnect: false });
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.lose(`no connection within ${settings.confirmTimeoutMs} ms`),
        settings.confirmTimeoutMs,
      );
      this.connection.once('connection_open', () => {
        clearTimeout(timer);
        resolve();
      });
      this.failReady = (reason) => {
        clearTimeout(timer);
        reject(new Error(reason));
      };
    });
    for (const event of LOSS_EVENTS) {
      this.connection.on(event, (context: EventContext) => this.lose(describeLoss(event, context)));
    }
  }

  publish(address: string, message: Message, timeoutMs: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let delivery: Delivery | undefined;
      const settle = (outcome: Outcome): void => {
        clearTimeout(timer);
        this.waiting.delete(send);
        if (delivery !== undefined) this.unsettled.delete(delivery);
        resolve(outcome);
      };
      const timer = setTimeout(
        () => settle({ settled: 'retry', reason: `no disposition from the broker within ${timeoutMs} ms` }),
        timeoutMs,
      );
      const send = (): void => {
        if (this.lost !== undefined) {
          settle({ settled: 'retry', reason: `connection lost (${this.lost})` });
          return;
        }
        const sender = this.sender(address);
        if (!sender.sendable()) {
          this.waiting.add(send);
          return;
        }
        this.waiting.delete(send);
        delivery = sender.send(message);
        this.unsettled.set(delivery, settle);
      };
      send();
    });
  }

  async close(): Promise<void> {
    if (this.lost !== undefined) return;
    const closed = new Promise<void>((resolve) => {
      this.connection.once('connection_close', () => resolve());
      this.connection.once('disconnected', () => resolve());
    });
    this.lose('closed by the channel');
    // A broker that does not answer the close must not hold up shutdown.
    await Promise.race([closed, sleep(2000)]);
  }

  private sender(address: string): Sender {
    let sender = this.senders.get(address);
    if (sender === undefined) {
      // Sent unsettled to a durable target: the broker settles each message with its outcome only once it
      // holds it (RabbitMQ: after its publisher confirm), and a durable target makes `/queue/NAME` durable.
      sender = this.connection.open_sender({ target: { address, durable: 2 } });
      sender.on('accepted', (context: EventContext) => this.settled(context, { settled: 'accepted' }));
      sender.on('rejected', (context: EventContext) =>
        this.settled(context, { settled: 'rejected', reason: describeRemoteError(context) }),
      );
      sender.on('released', (context: EventContext) =>
        this.settled(context, { settled: 'retry', reason: 'the broker released it' }),
      );
      sender.on('modified', (context: EventContext) =>
        this.settled(context, { settled: 'retry', reason: 'the broker returned it modified' }),
      );
      sender.on('sendable', () => this.wake());
      this.senders.set(address, sender);
    }
    return sender;
  }

  private settled(context: EventContext, outcome: Outcome): void {
    const delivery = context.delivery;
    if (delivery === undefined) return;
    this.unsettled.get(delivery)?.(outcome);
  }

  private wake(): void {
    for (const send of [...this.waiting]) send();
  }

  private lose(reason: string): void {
    if (this.lost !== undefined) return;
    this.lost = reason;
    this.failReady(reason);
    for (const settle of [...this.unsettled.values()]) {
      settle({ settled: 'retry', reason: `connection lost before the broker confirmed (${reason})` });
    }
    this.wake();
    this.onLoss();
    // After a link or session error the connection may still be open: start afresh on a new one.
    this.connection.close();
  }
}

function toAmqpMessage(invitation: Invitation): Message {
  const body = invitationMessage(invitation);
  return {
    message_id: invitation.idempotencyKey,
    durable: true,
    subject: body.type,
    content_type: 'application/json',
    creation_time: new Date(),
    // For routing and operators' eyes; nothing here identifies the person.
    application_properties: { kind: invitation.kind, attempt: invitation.attempt, task: invitation.taskId },
    // One data section: RabbitMQ hands its bytes unchanged to AMQP 0-9-1 consumers too.
    body: amqpMessage.data_section(Buffer.from(JSON.stringify(body), 'utf8')),
  };
}

function describeLoss(event: (typeof LOSS_EVENTS)[number], context: EventContext): string {
  const error = (context.error ?? context.connection?.error) as
    { message?: string; description?: string } | undefined;
  const detail = error?.description ?? error?.message;
  return detail === undefined ? event : `${event}: ${detail}`;
}

function describeRemoteError(context: EventContext): string {
  const state = context.delivery?.remote_state as
    { error?: { condition?: string; description?: string } } | undefined;
  const error = state?.error;
  return [error?.condition, error?.description].filter(Boolean).join(': ') || 'no reason given';
}
