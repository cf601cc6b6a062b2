import path from 'node:path';
import type Database from 'better-sqlite3';
import { openPrivateDatabase } from '../store/privateDatabase';
import type { Invitation } from './channel';

/**
 * The dispatch ledger (docs/followup.md, "Exactly one invitation per Task"): every attempt to send an
 * invitation is recorded durably before it is handed to the channel and marked sent once the channel has
 * accepted it, so that an attempt a crash interrupted is delivered again with the same idempotency key
 * (never as a new attempt). It also knows whose Tasks are open, so that a reservation can forget the
 * person here as well. It holds no national id: pseudonymous Patient ids, Task ids and the Questionnaire.
 *
 * An interface, so that a PostgreSQL ledger (STATE=postgres, several replicas) can take the SQLite one's
 * place.
 */
export interface DispatchLedger {
  /** Records an attempt before its delivery; a second record of the same key changes nothing. */
  record(attempt: AttemptRecord): void;
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

export class SqliteDispatchLedger implements DispatchLedger {
  private readonly db: Database.Database;
  private readonly stmts;

  private constructor(file: string) {
    // Synced at every commit (openPrivateDatabase): an attempt is on disk before its message leaves.
    this.db = openPrivateDatabase(file, SCHEMA);
    this.stmts = {
      record: this.db.prepare<[string, string, number, string, string, string]>(
        `INSERT INTO attempt (idempotency_key, task_id, attempt, patient_id, record, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      markSent: this.db.prepare<[string, string]>(
        'UPDATE attempt SET sent_at = ? WHERE idempotency_key = ? AND sent_at IS NULL',
      ),
      unconfirmed: this.db.prepare<[], AttemptRow>(
        'SELECT record, sent_at FROM attempt WHERE sent_at IS NULL ORDER BY recorded_at',
      ),
      drop: this.db.prepare<[string]>('DELETE FROM attempt WHERE idempotency_key = ?'),
      ofTask: this.db.prepare<[string], AttemptRow>(
        'SELECT record, sent_at FROM attempt WHERE task_id = ? ORDER BY attempt',
      ),
      sent: this.db.prepare<[], AttemptRow>('SELECT record, sent_at FROM attempt WHERE sent_at IS NOT NULL'),
      open: this.db.prepare<[string, string]>(
        'INSERT INTO open_task (task_id, patient_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
      ),
      closed: this.db.prepare<[string]>('DELETE FROM open_task WHERE task_id = ?'),
      forgetAttempts: this.db.prepare<[string]>('DELETE FROM attempt WHERE patient_id = ?'),
      forgetTasks: this.db.prepare<[string]>('DELETE FROM open_task WHERE patient_id = ?'),
    };
  }

  static open(dataDir: string): SqliteDispatchLedger {
    return new SqliteDispatchLedger(path.join(dataDir, 'followup', 'dispatch.sqlite'));
  }

  record(attempt: AttemptRecord): void {
    this.stmts.record.run(
      attempt.idempotencyKey,
      attempt.taskId,
      attempt.attempt,
      attempt.patientId,
      JSON.stringify(attempt),
      attempt.recordedAt,
    );
  }

  markSent(key: string, at: Date): void {
    this.stmts.markSent.run(at.toISOString(), key);
  }

  unconfirmed(): AttemptRecord[] {
    return this.stmts.unconfirmed.all().map(fromRow);
  }

  drop(key: string): void {
    this.stmts.drop.run(key);
  }

  attemptsOf(taskId: string): AttemptRecord[] {
    return this.stmts.ofTask.all(taskId).map(fromRow);
  }

  opened(taskId: string, patientId: string): void {
    this.stmts.open.run(taskId, patientId);
  }

  closed(taskId: string): void {
    this.stmts.closed.run(taskId);
  }

  forgetPerson(patientId: string): number {
    return this.db.transaction(() => {
      this.stmts.forgetAttempts.run(patientId);
      return this.stmts.forgetTasks.run(patientId).changes;
    })();
  }

  sentAttempts(): AttemptRecord[] {
    return this.stmts.sent.all().map(fromRow);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function fromRow(row: AttemptRow): AttemptRecord {
  const record = JSON.parse(row.record) as AttemptRecord;
  return row.sent_at === null ? record : { ...record, sentAt: row.sent_at };
}
