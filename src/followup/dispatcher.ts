import type { Task } from '@medplum/fhirtypes';
import type { PersonLockService } from '../consent/personLock';
import { personKey } from '../ingest/exclude';
import { kindRank } from '../identity/nationalId';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import type { FhirStore } from '../store/FhirStore';
import type { Channel, Invitation } from './channel';
import type { AttemptRecord, DispatchLedger } from './ledger';
import type { FollowUpSettings } from './settings';
import { addDays, businessStatus, isOpen, patientOf, questionnaireOf } from './task';
import { changeTask, followUpTasks, readTask } from './taskStore';

export interface DispatchReport {
  invited: number;
  reminded: number;
  expired: number;
  /** Attempts a crash (or a failed channel) had left unconfirmed, delivered again with their key. */
  redelivered: number;
  /** Unconfirmed attempts not delivered, because their Task or person is gone (a reservation). */
  dropped: number;
  /** Deliveries that failed; their attempts are delivered again on the next run. */
  failed: number;
}

export interface DispatcherDeps {
  store: FhirStore;
  vault: Pick<IdentityVault, 'forFollowUp'>;
  ledger: DispatchLedger;
  channel: Channel;
  /** The person locks a reservation takes exclusively: a message is sent under the person's shared lock. */
  locks: PersonLockService;
  /** Held exclusively on a Task while one of its attempts is delivered: dispatchers running at once (on
   * any replica) take turns on it, and the later one finds the attempt sent. */
  taskLocks: PersonLockService;
  settings: FollowUpSettings;
  /** Who reads the vault, for its audit: the server's scheduler or the CLI. */
  actor: string;
}

type Progress = (done: number, total: number) => void;

/**
 * Sends what is due (docs/followup.md): at `now`, every open follow-up Task whose period has begun gets
 * its invitation, then a reminder each `reminderDays` after the last message (at most `maxReminders`), and
 * expires (status failed, businessStatus expired) once its period has ended unanswered.
 *
 * Exactly one message per attempt, also across crashes: the attempt (`<task>/<n>`) is recorded in the
 * ledger before the channel gets it and marked sent after the channel confirmed it; a run first delivers
 * again, with the same key, every attempt left unconfirmed, so the receiver (the outbox file, the broker's
 * consumer) sees the same message again rather than a second one. Each message is sent under the person's
 * shared lock, after checking that the Task is still open and the person still in the vault: a reservation
 * (which takes the lock exclusively, erases the Tasks and the vault entry and forgets the person's
 * attempts) is never followed by a message, not even one recorded before it.
 */
export class Dispatcher {
  constructor(private readonly deps: DispatcherDeps) {}

  async run(now: Date, onProgress?: Progress): Promise<DispatchReport> {
    const report: DispatchReport = {
      invited: 0,
      reminded: 0,
      expired: 0,
      redelivered: 0,
      dropped: 0,
      failed: 0,
    };
    const pending = this.deps.ledger.unconfirmed();
    // Collected first: sending changes the Tasks a paged search would walk over.
    const open: Task[] = [];
    for await (const task of followUpTasks(this.deps.store, { status: 'requested,in-progress' })) {
      open.push(task);
    }
    const total = pending.length + open.length;
    let done = 0;
    for (const attempt of pending) {
      const outcome = await this.deliver(attempt, now);
      if (outcome === 'sent') report.redelivered++;
      else if (outcome === 'dropped') report.dropped++;
      else if (outcome === 'failed') report.failed++;
      onProgress?.(++done, total);
    }
    for (const task of open) {
      await this.dispatchTask(task, now, report);
      onProgress?.(++done, total);
    }
    return report;
  }

  private async dispatchTask(task: Task, now: Date, report: DispatchReport): Promise<void> {
    const id = task.id;
    const patientId = patientOf(task);
    const questionnaire = questionnaireOf(task);
    const start = task.executionPeriod?.start;
    const end = task.executionPeriod?.end;
    if (!id || !patientId || !questionnaire || !start || !end) return;
    if (now.getTime() >= Date.parse(end)) {
      const expired = await changeTask(this.deps.store, id, (current) =>
        current && isOpen(current)
          ? {
              ...current,
              status: 'failed',
              businessStatus: businessStatus('expired'),
              statusReason: { text: 'Not answered within the period the invitation was open.' },
              lastModified: now.toISOString(),
            }
          : undefined,
      );
      if (expired?.status === 'failed') {
        this.deps.ledger.closed(id);
        report.expired++;
      }
      return;
    }
    if (now.getTime() < Date.parse(start)) return;
    const attempts = this.deps.ledger.attemptsOf(id);
    const last = attempts[attempts.length - 1];
    if (last !== undefined) {
      // Unconfirmed: delivered again at the start of the next run, never as a new attempt.
      if (last.sentAt === undefined || attempts.length > this.deps.settings.maxReminders) return;
      if (now.getTime() < addDays(new Date(last.sentAt), this.deps.settings.reminderDays).getTime()) return;
    }
    const n = attempts.length + 1;
    const attempt: AttemptRecord = {
      idempotencyKey: `${id}/${n}`,
      taskId: id,
      attempt: n,
      kind: n === 1 ? 'invitation' : 'reminder',
      questionnaire,
      expires: new Date(end).toISOString(),
      patientId,
      recordedAt: now.toISOString(),
    };
    const outcome = await this.deliver(attempt, now);
    if (outcome === 'sent') {
      if (n === 1) report.invited++;
      else report.reminded++;
    } else if (outcome === 'failed') report.failed++;
  }

  /**
   * Records the attempt (unless it is recorded) and hands it to the channel, under the person's shared lock
   * and only while its Task is open and the vault holds the person; marks it sent once the channel
   * confirmed. A failed delivery stays recorded for the next run; `done`: another dispatcher sent it.
   */
  private async deliver(attempt: AttemptRecord, now: Date): Promise<'sent' | 'dropped' | 'failed' | 'done'> {
    const { store, vault, ledger, channel, locks, taskLocks } = this.deps;
    // Task lock first, then the person's: no other caller takes both, so no two wait for each other.
    const releaseTask = await taskLocks.acquire([attempt.taskId], 'exclusive');
    try {
      // Another dispatcher delivered it while this one waited (or read its list before that one ended).
      if (ledger.attempt(attempt.idempotencyKey)?.sentAt !== undefined) return 'done';
      const release = await locks.acquire([personKey.patient(attempt.patientId)], 'shared');
      try {
        const task = await readTask(store, attempt.taskId);
        if (task === undefined || !isOpen(task)) {
          ledger.drop(attempt.idempotencyKey);
          return 'dropped';
        }
        const ids = vault.forFollowUp(attempt.patientId, {
          actor: this.deps.actor,
          requestId: attempt.idempotencyKey,
        });
        const id = ids?.slice().sort((a, b) => kindRank[a.kind] - kindRank[b.kind])[0];
        if (id === undefined) {
          ledger.drop(attempt.idempotencyKey);
          return 'dropped';
        }
        ledger.record(attempt);
        const invitation: Invitation = {
          idempotencyKey: attempt.idempotencyKey,
          taskId: attempt.taskId,
          attempt: attempt.attempt,
          kind: attempt.kind,
          questionnaire: attempt.questionnaire,
          nationalId: id.value,
          expires: attempt.expires,
        };
        try {
          await channel.deliver(invitation);
        } catch {
          return 'failed';
        }
        ledger.markSent(attempt.idempotencyKey, now);
      } finally {
        release();
      }
    } finally {
      releaseTask();
    }
    await changeTask(store, attempt.taskId, (current) =>
      current && current.status === 'requested'
        ? {
            ...current,
            businessStatus: businessStatus(attempt.attempt === 1 ? 'invited' : 'reminded'),
            lastModified: now.toISOString(),
          }
        : undefined,
    );
    return 'sent';
  }
}
