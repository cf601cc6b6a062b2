/**
 * How an invitation leaves the registry (DESIGN §9). The dispatcher decides what is due and records what
 * was sent; a channel only carries one message to the person's inbox (helsenorge's message delivery over
 * AMQP 1.0 in production, an outbox folder in development). The national id exists only in the message a
 * channel delivers, never in our store or logs.
 */

/** One message to one person: the first invitation for a follow-up Task or a reminder of it. */
export interface Invitation {
  /**
   * The same for every delivery of one attempt (`<Task id>/<attempt>`): a channel or its consumer drops a
   * second message with a key it has seen, so a crash between delivering and recording sends nothing twice.
   */
  idempotencyKey: string;
  /** The follow-up Task's id in our store (a server id, never a national id). */
  taskId: string;
  /** 1 for the invitation, 2, 3, … for reminders. */
  attempt: number;
  kind: 'invitation' | 'reminder';
  /** The Questionnaire's versioned canonical URL (`url|version`), as the Task's `focus` names it. */
  questionnaire: string;
  /** The person's national id, read from the identity vault (audited) just before delivery. */
  nationalId: string;
  /** When the invitation lapses (ISO 8601 date-time), so the inbox can say so. */
  expires: string;
}

export interface Channel {
  /** A short name for logs, audit and metrics: `outbox`, `amqp`. */
  readonly name: string;
  /**
   * Resolves only once the message is durably accepted (the broker's confirm, the outbox file synced);
   * rejects when it may not have been, so the dispatcher retries the same attempt with the same key.
   */
  deliver(invitation: Invitation): Promise<void>;
  close(): Promise<void>;
}
