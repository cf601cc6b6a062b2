import path from 'node:path';
import { openStateDatabase, type StateConfig, type StateDatabase } from '../state';
import { openPrivateDatabase } from '../store/privateDatabase';

/** Bulk Data export jobs as the façade's state keeps them (DESIGN §7: its own state, never the FHIR store). */

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
  /** Who may poll, download and cancel (`ownerOf` in src/export/operations.ts): nobody else sees the job. */
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
  /** The process running it (StateServices.instance); absent for a job recorded before runners were. */
  runner?: string;
}

export type NewJob = Omit<
  ExportJob,
  'status' | 'written' | 'typesDone' | 'output' | 'error' | 'expiresAt' | 'runner'
>;

export interface JobStore {
  create(job: NewJob): void;
  get(id: string): ExportJob | undefined;
  /** Records progress; false once the job is no longer in progress (cancelled, on any replica). */
  progress(id: string, written: number, typesDone: number): boolean;
  /** Marks an in-progress job finished; false if it was no longer in progress (cancelled meanwhile). */
  finish(
    id: string,
    outcome: { status: 'completed'; output: OutputFile[] } | { status: 'failed'; error: string },
    expiresAt: string,
  ): boolean;
  remove(id: string): void;
  /** Jobs whose files are due for deletion at `now`. */
  expired(now: string): ExportJob[];
  /** Jobs in progress that another process runs (or ran: one that stopped leaves its jobs so). */
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
  expires_at TEXT,
  runner TEXT
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
  runner: string | null;
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
    runner: row.runner ?? undefined,
  };
}

/**
 * The jobs on the state (src/state): DATA_DIR/export/jobs.sqlite (a private file, like the vault and the
 * register), or PostgreSQL's table (migrations.ts) shared by every replica, so that a job kicked off on one
 * replica is polled, downloaded and cancelled on any (its files in the shared EXPORT_DIR). Each job names
 * the process that runs it (`runner`), so that only a job whose runner has stopped is failed as orphaned.
 */
export class StateJobStore implements JobStore {
  constructor(
    private readonly db: StateDatabase,
    private readonly runner: string,
  ) {}

  static open(state: StateConfig, dataDir: string, runner: string): StateJobStore {
    return new StateJobStore(
      openStateDatabase(state, () => {
        const db = openPrivateDatabase(path.join(dataDir, 'export', 'jobs.sqlite'), SCHEMA);
        // A file from before jobs named their runner: its jobs have none (and count as orphaned).
        const columns = db.pragma('table_info(export_job)') as { name: string }[];
        if (!columns.some((c) => c.name === 'runner'))
          db.exec('ALTER TABLE export_job ADD COLUMN runner TEXT');
        return db;
      }),
      runner,
    );
  }

  create(job: NewJob): void {
    this.db.run(
      `INSERT INTO export_job (id, owner, request, request_id, level, group_id, types, since, transaction_time, status, created_at, runner)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'in-progress', ?, ?)`,
      [
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
        this.runner,
      ],
    );
  }

  get(id: string): ExportJob | undefined {
    const row = this.db.get<JobRow>('SELECT * FROM export_job WHERE id = ?', [id]);
    return row === undefined ? undefined : fromRow(row);
  }

  progress(id: string, written: number, typesDone: number): boolean {
    return (
      this.db.run(
        `UPDATE export_job SET written = ?, types_done = ? WHERE id = ? AND status = 'in-progress'`,
        [written, typesDone, id],
      ).changes === 1
    );
  }

  finish(
    id: string,
    outcome: { status: 'completed'; output: OutputFile[] } | { status: 'failed'; error: string },
    expiresAt: string,
  ): boolean {
    const result = this.db.run(
      `UPDATE export_job SET status = ?, output = ?, error = ?, expires_at = ?
       WHERE id = ? AND status = 'in-progress'`,
      [
        outcome.status,
        JSON.stringify(outcome.status === 'completed' ? outcome.output : []),
        outcome.status === 'failed' ? outcome.error : null,
        expiresAt,
        id,
      ],
    );
    return result.changes === 1;
  }

  remove(id: string): void {
    this.db.run('DELETE FROM export_job WHERE id = ?', [id]);
  }

  expired(now: string): ExportJob[] {
    return this.db
      .all<JobRow>('SELECT * FROM export_job WHERE expires_at IS NOT NULL AND expires_at <= ?', [now])
      .map(fromRow);
  }

  unfinished(): ExportJob[] {
    return this.db
      .all<JobRow>(
        `SELECT * FROM export_job WHERE status = 'in-progress' AND (runner IS NULL OR runner <> ?)`,
        [this.runner],
      )
      .map(fromRow);
  }

  close(): void {
    this.db.close();
  }
}
