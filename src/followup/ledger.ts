import path from 'node:path';
import { openStateDatabase, type StateConfig, type StateDatabase } from '../state';
import { openPrivateDatabase } from '../store/privateDatabase';
import type { Invitation } from './channel';

/**
 * The dispatch ledger (docs/followup.md, "Exactly one invitation per Task"): every attempt to send an
 * invitation is recorded durably before it is handed to the channel and marked sent once the channel has
 * accepted it, so that an attempt a crash interrupted is delivered again with the same idempotency key
 * (never as a new attempt). It also knows whose Tasks are open, so that a reservation can forget the
 * person here as well. It holds no national id: pseudonymous Patient ids, Task ids and the Questionnaire.
 */
export interface DispatchLedger {
  /** Records an attempt before its delivery; a second record of the same key changes nothing. */
  record(attempt: AttemptRecord): void;
  /** The attempt with this key, as recorded (sentAt once confirmed). */
  attempt(key: string): AttemptRecord | undefined;
  /** The channel accepted the attempt. */
  markSent(key: string, at: Date): void;
  /** Attempts recorded but not confirmed sent (a crash, or a channel that failed), oldest first. */
  unconfirmed(): AttemptRecord[];
  /** Drops an attempt that must never be delivered (its Task or person is gone). */
  drop(key: string): void;
  /** The Task's attempts, in order. */
  attemptsOf(taskId: string): AttemptRecord[];
  /** The Task is open (scheduled or sent) for this person. */
  opened(taskId: string, patientId: string): void;
  /** The Task is closed (answered, expired, cancelled). */
  closed(taskId: string): void;
  /** Forgets the person (a reservation): their Tasks and attempts. Returns how many Tasks were open. */
  forgetPerson(patientId: string): number;
  /** Every attempt confirmed sent, for the response-rate figures. */
  sentAttempts(): AttemptRecord[];
  /** After a person was forgotten: no copy of `texts` left outside the live rows (StateDatabase.scrub). */
  scrub(texts: readonly string[]): void;
  close(): void;
}

/** What is needed to deliver an attempt again exactly as first sent (the national id is read anew). */
export interface AttemptRecord extends Omit<Invitation, 'nationalId'> {
  patientId: string;
  recordedAt: string;
  sentAt?: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS attempt (
  idempotency_key TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  patient_id TEXT NOT NULL,
  record TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  sent_at TEXT,
  UNIQUE (task_id, attempt)
);
CREATE INDEX IF NOT EXISTS attempt_patient ON attempt (patient_id);
CREATE INDEX IF NOT EXISTS attempt_unconfirmed ON attempt (recorded_at) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS open_task (
  task_id TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS open_task_patient ON open_task (patient_id);
`;

interface AttemptRow {
  record: string;
  sent_at: string | null;
}

const SELECT = 'SELECT record, sent_at FROM attempt';

/**
 * The ledger on the state (src/state): DATA_DIR/followup/dispatch.sqlite, or PostgreSQL's tables
 * (migrations.ts) shared by every replica, so that a dispatch on any replica sees every attempt.
 */
export class StateDispatchLedger implements DispatchLedger {
  constructor(private readonly db: StateDatabase) {}

  static open(state: StateConfig, dataDir: string): StateDispatchLedger {
    // Synced at every commit (openPrivateDatabase): an attempt is on disk before its message leaves.
    return new StateDispatchLedger(
      openStateDatabase(state, () =>
        openPrivateDatabase(path.join(dataDir, 'followup', 'dispatch.sqlite'), SCHEMA),
      ),
    );
  }

  record(attempt: AttemptRecord): void {
    this.db.run(
      `INSERT INTO attempt (idempotency_key, task_id, attempt, patient_id, record, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [
        attempt.idempotencyKey,
        attempt.taskId,
        attempt.attempt,
        attempt.patientId,
        JSON.stringify(attempt),
        attempt.recordedAt,
      ],
    );
  }

  markSent(key: string, at: Date): void {
    this.db.run('UPDATE attempt SET sent_at = ? WHERE idempotency_key = ? AND sent_at IS NULL', [
      at.toISOString(),
      key,
    ]);
  }

  attempt(key: string): AttemptRecord | undefined {
    const row = this.db.get<AttemptRow>(`${SELECT} WHERE idempotency_key = ?`, [key]);
    return row === undefined ? undefined : fromRow(row);
  }

  unconfirmed(): AttemptRecord[] {
    return this.db.all<AttemptRow>(`${SELECT} WHERE sent_at IS NULL ORDER BY recorded_at`).map(fromRow);
  }

  drop(key: string): void {
    this.db.run('DELETE FROM attempt WHERE idempotency_key = ?', [key]);
  }

  attemptsOf(taskId: string): AttemptRecord[] {
    return this.db.all<AttemptRow>(`${SELECT} WHERE task_id = ? ORDER BY attempt`, [taskId]).map(fromRow);
  }

  opened(taskId: string, patientId: string): void {
    this.db.run('INSERT INTO open_task (task_id, patient_id) VALUES (?, ?) ON CONFLICT DO NOTHING', [
      taskId,
      patientId,
    ]);
  }

  closed(taskId: string): void {
    this.db.run('DELETE FROM open_task WHERE task_id = ?', [taskId]);
  }

  forgetPerson(patientId: string): number {
    return this.db.transaction(() => {
      this.db.run('DELETE FROM attempt WHERE patient_id = ?', [patientId]);
      return this.db.run('DELETE FROM open_task WHERE patient_id = ?', [patientId]).changes;
    });
  }

  sentAttempts(): AttemptRecord[] {
    return this.db.all<AttemptRow>(`${SELECT} WHERE sent_at IS NOT NULL`).map(fromRow);
  }

  scrub(texts: readonly string[]): void {
    this.db.scrub(texts, ['attempt', 'open_task']);
  }

  close(): void {
    this.db.close();
  }
}

function fromRow(row: AttemptRow): AttemptRecord {
  const record = JSON.parse(row.record) as AttemptRecord;
  return row.sent_at === null ? record : { ...record, sentAt: row.sent_at };
}
