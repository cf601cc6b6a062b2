import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { AuditEvent, ResourceType } from '@medplum/fhirtypes';
import { openStateDatabase, type StateDatabase, type StateServices } from '../state';
import { GroupCommit } from '../store/groupCommit';
import { openPrivateDatabase } from '../store/privateDatabase';

/**
 * The write journal (docs/architecture.md, "One outcome per write"): an intent is written durably, in the
 * façade's own state (SQLite file, or PostgreSQL with STATE=postgres), before a write touches the clinical store, and closed once the write's vault
 * links and audit entry are recorded. An intent still open at start-up belongs to a write a crash (or a
 * lost answer from HAPI) interrupted; recovery (src/ingest/recovery.ts) looks the write up by its targets
 * and either completes it (vault links, audit entry) or undoes what it left (Patients created ahead).
 *
 * The journal holds no national id: the planned vault links are sealed by the vault's own key, the rest
 * is pseudonymous (resource ids, the pending audit entry, which already passed the audit log's guard).
 */

/** What a write will change in the store, known before it is sent, so that it can be looked up. */
export interface IntentTarget {
  type: ResourceType;
  method: 'POST' | 'PUT' | 'DELETE';
  /** The id the write gives or changes; absent for a conditional write. */
  id?: string;
  /** The conditional query (If-None-Exist or conditional update) when there is no id. */
  query?: string;
  /** The id was chosen for this write (a create): the resource exists only if the write landed. */
  fresh?: boolean;
}

export interface IntentRecord {
  id: string;
  requestId: string;
  /** When the intent was opened: a version of a target at or after this instant is the write's. */
  openedAt: string;
  transaction: boolean;
  /** The vault links the write makes, sealed by the vault (IdentityVault.sealLinks). */
  sealedLinks?: string;
  /** Patients created in the store ahead of the write, for persons only referenced by national id. */
  ensured: string[];
  /** Set just before the write is sent to the store. */
  targets?: IntentTarget[];
  /** The write's audit entry as it will be recorded should the request's own entry be missing. */
  audit?: AuditEvent;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS write_intent (
  id TEXT PRIMARY KEY,
  opened_at TEXT NOT NULL,
  record TEXT NOT NULL,
  owner TEXT NOT NULL DEFAULT ''
);
`;

export class WriteJournal {
  /** Intents of writes this process is still running: recovery leaves them alone. */
  private readonly live = new Set<string>();

  private constructor(
    private readonly db: StateDatabase,
    private readonly state: Pick<StateServices, 'instance' | 'gone'>,
    /** On SQLite: an intent must be on disk before the write it announces is sent, its removal before the
     * answer, and writes running at the same time share one sync for that, off the event loop. PostgreSQL
     * commits durably (synchronous_commit), so there is nothing to wait for. */
    private readonly commits: GroupCommit | undefined,
  ) {}

  /**
   * DATA_DIR/write-journal.sqlite, this process's alone; on PostgreSQL the state's table, shared by the
   * replicas, so that a replica that dies and never comes back leaves its intents to the others.
   */
  static open(dataDir: string, state: Pick<StateServices, 'config' | 'instance' | 'gone'>): WriteJournal {
    let commits: GroupCommit | undefined;
    const db = openStateDatabase(state.config, () => {
      const sqlite = openPrivateDatabase(path.join(dataDir, 'write-journal.sqlite'), SCHEMA);
      const columns = sqlite.pragma('table_info(write_intent)') as { name: string }[];
      // A journal from before intents named their process: its intents are an earlier process's.
      if (!columns.some((c) => c.name === 'owner')) {
        sqlite.exec("ALTER TABLE write_intent ADD COLUMN owner TEXT NOT NULL DEFAULT ''");
      }
      commits = GroupCommit.of(sqlite);
      return sqlite;
    });
    return new WriteJournal(db, state, commits);
  }

  /** A new intent for a write of this request; nothing is on disk until it plans something. */
  begin(requestId: string, transaction: boolean): WriteIntent {
    const record: IntentRecord = {
      id: randomUUID(),
      requestId,
      openedAt: new Date().toISOString(),
      transaction,
      ensured: [],
    };
    this.live.add(record.id);
    return new WriteIntent(this, record);
  }

  /**
   * Intents no write of this process is running: left by a crash, by a write whose outcome is open, or by
   * a process that has stopped (another replica, an earlier start), whose intents this process takes over
   * first — one process only, since taking them over is one UPDATE of that owner's rows.
   */
  async unfinished(): Promise<IntentRecord[]> {
    const me = this.state.instance;
    for (const { owner } of this.db.all<{ owner: string }>(
      'SELECT DISTINCT owner FROM write_intent WHERE owner <> ?',
      [me],
    )) {
      if (await this.state.gone(owner)) {
        this.db.run('UPDATE write_intent SET owner = ? WHERE owner = ?', [me, owner]);
      }
    }
    return this.db
      .all<{ record: string }>('SELECT record FROM write_intent WHERE owner = ? ORDER BY opened_at', [me])
      .map((row) => JSON.parse(row.record) as IntentRecord)
      .filter((record) => !this.live.has(record.id));
  }

  /** Writes the intent durably (again, with what it now plans); resolves once it is on disk. */
  save(record: IntentRecord): Promise<void> {
    this.db.run(
      'INSERT INTO write_intent (id, opened_at, record, owner) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record',
      [record.id, record.openedAt, JSON.stringify(record), this.state.instance],
    );
    return this.durable();
  }

  /** The write is complete (or undone): the intent goes; resolves once that is on disk, so that a power
   * loss cannot bring back a settled intent (whose recovery would audit the write a second time). */
  finish(id: string): Promise<void> {
    this.db.run('DELETE FROM write_intent WHERE id = ?', [id]);
    this.live.delete(id);
    return this.durable();
  }

  private durable(): Promise<void> {
    return this.commits?.durable() ?? Promise.resolve();
  }

  /** Leaves the intent on disk for recovery, and no longer counts it as running here. */
  release(id: string): void {
    this.live.delete(id);
  }

  /** After an erasure: no copy of `texts` (in the intents of finished writes) left outside the live rows. */
  scrub(texts: readonly string[]): void {
    this.db.scrub(texts, ['write_intent']);
  }

  async close(): Promise<void> {
    this.db.close();
    await this.commits?.close();
  }
}

/** One write's intent, as the pipeline stages fill it in. */
export class WriteIntent {
  /** The store took the write: from here on only recovery may drop the intent. */
  stored = false;
  private saved = false;
  constructor(
    private readonly journal: WriteJournal,
    readonly record: IntentRecord,
  ) {}

  /** Before anything of the write reaches the store: the vault links it will make, and the Patients it
   * creates ahead of the write (so that recovery can erase them if the write never lands). */
  async planLinks(sealedLinks: string | undefined, ensured: readonly string[]): Promise<void> {
    if (sealedLinks === undefined && ensured.length === 0) {
      return;
    }
    this.record.sealedLinks = sealedLinks;
    this.record.ensured = [...ensured];
    await this.save();
  }

  /** Just before the write is sent: what it changes, and its audit entry. */
  async planWrite(targets: IntentTarget[], audit: AuditEvent | undefined): Promise<void> {
    this.record.targets = targets;
    this.record.audit = audit;
    await this.save();
  }

  /** The write is complete (its audit entry recorded), or did not happen: the intent goes. */
  async close(): Promise<void> {
    if (this.saved) {
      await this.journal.finish(this.record.id);
    } else {
      this.journal.release(this.record.id);
    }
  }

  /** The write's outcome could not be established: recovery will. */
  release(): void {
    this.journal.release(this.record.id);
  }

  private save(): Promise<void> {
    const durable = this.journal.save(this.record); // committed here; on disk once `durable` resolves
    this.saved = true;
    return durable;
  }
}

/** The intents of one request (a batch has several), closed once the request's audit entry is recorded. */
export class RequestIntents {
  private readonly intents: WriteIntent[] = [];

  add(intent: WriteIntent): void {
    this.intents.push(intent);
  }

  /** After the request's audit entry was recorded; resolves once the removals are on disk. */
  async closeAll(): Promise<void> {
    await Promise.all(this.intents.splice(0).map((intent) => intent.close()));
  }

  /** The audit entry could not be recorded: the intents stay for recovery to record theirs. */
  releaseAll(): void {
    for (const intent of this.intents.splice(0)) {
      intent.release();
    }
  }
}
