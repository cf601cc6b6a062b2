import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { AuditEvent, ResourceType } from '@medplum/fhirtypes';
import { GroupCommit } from '../store/groupCommit';
import { openPrivateDatabase } from '../store/privateDatabase';

/**
 * The write journal (docs/architecture.md, "One outcome per write"): an intent is written durably, in the
 * façade's own SQLite file, before a write touches the clinical store, and closed once the write's vault
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
  record TEXT NOT NULL
);
`;

export class WriteJournal {
  private readonly db: Database.Database;
  /** Intents of writes this process is still running: recovery leaves them alone. */
  private readonly live = new Set<string>();
  private readonly stmts;
  /** An intent must be on disk before the write it announces is sent, its removal before the answer:
   * writes running at the same time share one sync for that, off the event loop. */
  private readonly commits: GroupCommit;

  private constructor(file: string) {
    this.db = openPrivateDatabase(file, SCHEMA);
    this.commits = GroupCommit.of(this.db);
    this.stmts = {
      save: this.db.prepare<[string, string, string]>(
        'INSERT INTO write_intent (id, opened_at, record) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record',
      ),
      remove: this.db.prepare<[string]>('DELETE FROM write_intent WHERE id = ?'),
      all: this.db.prepare<[], { record: string }>('SELECT record FROM write_intent ORDER BY opened_at'),
    };
  }

  static open(dataDir: string): WriteJournal {
    return new WriteJournal(path.join(dataDir, 'write-journal.sqlite'));
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

  /** Intents no write of this process is running: left by a crash, or by a write whose outcome is open. */
  unfinished(): IntentRecord[] {
    return this.stmts.all
      .all()
      .map((row) => JSON.parse(row.record) as IntentRecord)
      .filter((record) => !this.live.has(record.id));
  }

  /** Writes the intent durably (again, with what it now plans); resolves once it is on disk. */
  save(record: IntentRecord): Promise<void> {
    this.stmts.save.run(record.id, record.openedAt, JSON.stringify(record));
    return this.commits.durable();
  }

  /** The write is complete (or undone): the intent goes; resolves once that is on disk, so that a power
   * loss cannot bring back a settled intent (whose recovery would audit the write a second time). */
  finish(id: string): Promise<void> {
    this.stmts.remove.run(id);
    this.live.delete(id);
    return this.commits.durable();
  }

  /** Leaves the intent on disk for recovery, and no longer counts it as running here. */
  release(id: string): void {
    this.live.delete(id);
  }

  async close(): Promise<void> {
    if (this.db.open) {
      this.db.close();
    }
    await this.commits.close();
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

  /** The request's write when it made exactly one, with its checked audit entry (src/fhir/audit.ts). */
  soleWrite(): { targets: IntentTarget[]; audit: AuditEvent } | undefined {
    const record = this.intents.length === 1 ? this.intents[0].record : undefined;
    return record?.targets !== undefined && record.audit !== undefined
      ? { targets: record.targets, audit: record.audit }
      : undefined;
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
