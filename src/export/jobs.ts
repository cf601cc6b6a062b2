import path from 'node:path';
import type Database from 'better-sqlite3';
import { openPrivateDatabase } from '../store/privateDatabase';

/**
 * Bulk Data export jobs as the façade's state keeps them (DESIGN §7: its own small databases, never the
 * FHIR store). The engine, the HTTP operations and the sweeper use only the JobStore interface, so a
 * PostgreSQL implementation (STATE=postgres) can replace the SQLite one without touching them.
 */

/** A cancelled job is deleted with its files, so it has no status of its own. */
export type JobStatus = 'in-progress' | 'completed' | 'failed';

/** One file of a completed export, as the manifest lists it. */
export interface OutputFile {
  type: string;
  /** The file's name inside the job's folder, e.g. "Patient-1.ndjson". */
  name: string;
  count: number;
}

export interface ExportJob {
  id: string;
  /** Who may poll, download and cancel (src/export/owner.ts): nobody else sees the job. */
  owner: string;
  /** The kick-off URL as the client sent it (the manifest's `request`). */
  request: string;
  /** The kick-off's request id, which the audit entries of the job's later steps carry too. */
  requestId: string;
  level: 'system' | 'patient' | 'group';
  groupId?: string;
  types: string[];
  since?: string;
  /** The instant the export reads the view at (the manifest's `transactionTime`). */
  transactionTime: string;
  status: JobStatus;
  /** Resources written so far. */
  written: number;
  /** Types finished so far (for X-Progress). */
  typesDone: number;
  output: OutputFile[];
  /** Why a job failed, as the client may read it (no internals). */
  error?: string;
  createdAt: string;
  /** When its files are deleted (set when the job completes or fails). */
  expiresAt?: string;
}

export type NewJob = Omit<ExportJob, 'status' | 'written' | 'typesDone' | 'output' | 'error' | 'expiresAt'>;

export interface JobStore {
  create(job: NewJob): void;
  get(id: string): ExportJob | undefined;
  progress(id: string, written: number, typesDone: number): void;
  /** Marks an in-progress job finished; false if it was no longer in progress (cancelled meanwhile). */
  finish(
    id: string,
    outcome: { status: 'completed'; output: OutputFile[] } | { status: 'failed'; error: string },
    expiresAt: string,
  ): boolean;
  remove(id: string): void;
  /** Jobs whose files are due for deletion at `now`. */
  expired(now: string): ExportJob[];
  /** Jobs left in progress by a server that stopped: they cannot resume and are failed at start. */
  unfinished(): ExportJob[];
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS export_job (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  request TEXT NOT NULL,
  request_id TEXT NOT NULL,
  level TEXT NOT NULL,
  group_id TEXT,
  types TEXT NOT NULL,
  since TEXT,
  transaction_time TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('in-progress', 'completed', 'failed')),
  written INTEGER NOT NULL DEFAULT 0,
  types_done INTEGER NOT NULL DEFAULT 0,
  output TEXT NOT NULL DEFAULT '[]',
  error TEXT,
  created_at TEXT NOT NULL,
  expires_at TEXT
);
CREATE INDEX IF NOT EXISTS export_job_expiry ON export_job (expires_at) WHERE expires_at IS NOT NULL;
`;

interface JobRow {
  id: string;
  owner: string;
  request: string;
  request_id: string;
  level: ExportJob['level'];
  group_id: string | null;
  types: string;
  since: string | null;
  transaction_time: string;
  status: JobStatus;
  written: number;
  types_done: number;
  output: string;
  error: string | null;
  created_at: string;
  expires_at: string | null;
}

function fromRow(row: JobRow): ExportJob {
  return {
    id: row.id,
    owner: row.owner,
    request: row.request,
    requestId: row.request_id,
    level: row.level,
    groupId: row.group_id ?? undefined,
    types: JSON.parse(row.types) as string[],
    since: row.since ?? undefined,
    transactionTime: row.transaction_time,
    status: row.status,
    written: row.written,
    typesDone: row.types_done,
    output: JSON.parse(row.output) as OutputFile[],
    error: row.error ?? undefined,
    createdAt: row.created_at,
    expiresAt: row.expires_at ?? undefined,
  };
}

/** The jobs in DATA_DIR/export/jobs.sqlite (a private file, like the vault and the register). */
export class SqliteJobStore implements JobStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = openPrivateDatabase(file, SCHEMA);
  }

  static open(dataDir: string): SqliteJobStore {
    return new SqliteJobStore(path.join(dataDir, 'export', 'jobs.sqlite'));
  }

  create(job: NewJob): void {
    this.db
      .prepare(
        `INSERT INTO export_job (id, owner, request, request_id, level, group_id, types, since, transaction_time, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'in-progress', ?)`,
      )
      .run(
        job.id,
        job.owner,
        job.request,
        job.requestId,
        job.level,
        job.groupId ?? null,
        JSON.stringify(job.types),
        job.since ?? null,
        job.transactionTime,
        job.createdAt,
      );
  }

  get(id: string): ExportJob | undefined {
    const row = this.db.prepare('SELECT * FROM export_job WHERE id = ?').get(id) as JobRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  progress(id: string, written: number, typesDone: number): void {
    this.db
      .prepare(`UPDATE export_job SET written = ?, types_done = ? WHERE id = ? AND status = 'in-progress'`)
      .run(written, typesDone, id);
  }

  finish(
    id: string,
    outcome: { status: 'completed'; output: OutputFile[] } | { status: 'failed'; error: string },
    expiresAt: string,
  ): boolean {
    const result = this.db
      .prepare(
        `UPDATE export_job SET status = ?, output = ?, error = ?, expires_at = ?
         WHERE id = ? AND status = 'in-progress'`,
      )
      .run(
        outcome.status,
        JSON.stringify(outcome.status === 'completed' ? outcome.output : []),
        outcome.status === 'failed' ? outcome.error : null,
        expiresAt,
        id,
      );
    return result.changes === 1;
  }

  remove(id: string): void {
    this.db.prepare('DELETE FROM export_job WHERE id = ?').run(id);
  }

  expired(now: string): ExportJob[] {
    const rows = this.db
      .prepare('SELECT * FROM export_job WHERE expires_at IS NOT NULL AND expires_at <= ?')
      .all(now) as JobRow[];
    return rows.map(fromRow);
  }

  unfinished(): ExportJob[] {
    const rows = this.db.prepare(`SELECT * FROM export_job WHERE status = 'in-progress'`).all() as JobRow[];
    return rows.map(fromRow);
  }

  close(): void {
    this.db.close();
  }
}
