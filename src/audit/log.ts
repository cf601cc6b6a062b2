import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import canonicalize from 'canonicalize';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { SearchResult } from '../store/FhirStore';
import {
  agentIdentifiersOf,
  patientPseudonymsOf,
  requestIdOf,
  resourceTypesOf,
  type AuditAction,
  type AuditOutcome,
  type AuditSink,
} from './auditEvent';
import { newServerId } from '../identity/serverId';
import { mayContainNationalId } from '../identity/nationalId';
import { assertNoNationalId } from './nationalIdGuard';
import { openStateDatabase, type StateConfig, type StateDatabase, type StateDialect } from '../state';
import { SqliteStateDatabase } from '../state/sqlite';

/**
 * The audit log: FHIR AuditEvents in an append-only database of their own (a SQLite file, or PostgreSQL's
 * tables shared by the replicas: src/state), never inside the clinical store, so that no FHIR
 * interaction, erasure or store backend can touch it.
 *
 * Tamper evidence. Triggers refuse UPDATE and DELETE, and every entry stores
 *   hash = sha256(previous entry's hash + RFC 8785 canonical JSON of the AuditEvent)
 * starting from 64 zeros. verifyChain() recomputes the chain and also checks that the search columns
 * and index rows agree with the hashed event, that positions are contiguous and that the last entry
 * has not been cut off (the highest position ever issued: SQLite's AUTOINCREMENT keeps it in sqlite_sequence,
 * PostgreSQL a trigger in audit_issued). Many writers — replicas — append one at a time: each append takes
 * the chain's lock first (SQLite's write lock; a PostgreSQL advisory lock), then extends the head.
 * Someone who can rewrite the whole file can rewrite the whole chain: operators anchor the head hash
 * `norpain audit verify` prints somewhere else to detect that.
 *
 * Erasure. A reservation does NOT erase audit entries. They hold no health data and no direct
 * identifier (registry pseudonyms only, which become unlinkable once the vault entry is erased, though
 * the person can still find their own entries by the pseudonym computed from their national id), and
 * the log exists to detect unauthorised use and to answer the person's right to see who accessed
 * their data (Normen, Faktaark 15); the erasure itself is an audited event. Retention (deleting the
 * oldest entries after a period set by the controller's risk assessment) is not implemented; it would
 * remove a prefix and re-anchor the chain, never single entries.
 */

const AUDIT_LOG_FILE = 'audit.sqlite';

const GENESIS = '0'.repeat(64);
const DEFAULT_COUNT = 50;
const MAX_COUNT = 1000;

export function auditLogPath(dataDir: string): string {
  return path.join(dataDir, AUDIT_LOG_FILE);
}

export interface AuditSearch {
  /** Events about this person (registry pseudonym). */
  patientPseudonym?: string;
  /** Events where an agent has this identifier: client id, RESH id, HPR number or citizen pseudonym. */
  agent?: string;
  /** recorded >= since (ISO instant). */
  since?: string;
  /** recorded < before (ISO instant). */
  before?: string;
  action?: AuditAction[];
  outcome?: AuditOutcome[];
  /** Events touching this resource type. */
  entityType?: string;
  requestId?: string;
  /** Newest first by default. */
  sort?: 'newest' | 'oldest';
  /** Page size, default 50, at most 1000; 0 returns only the total. */
  count?: number;
  offset?: number;
}

export type ChainVerification =
  | { ok: true; count: number; head: string }
  /** position: the first entry (1-based) that is missing, changed or out of place. */
  | { ok: false; count: number; position: number; reason: string };

interface Row {
  seq: number;
  recorded: string;
  action: string;
  outcome: string;
  event: string;
  prev_hash: string;
  hash: string;
}

type IndexKind = 'patient' | 'agent' | 'type' | 'request';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_event (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  recorded TEXT NOT NULL,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL,
  event TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_event_recorded ON audit_event (recorded);
CREATE TABLE IF NOT EXISTS audit_index (
  seq INTEGER NOT NULL REFERENCES audit_event (seq),
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (kind, value, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_index_seq ON audit_index (seq);
CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_index_no_update BEFORE UPDATE ON audit_index
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_index_no_delete BEFORE DELETE ON audit_index
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`;

/** The highest position ever issued, kept by each backend (see the module comment). */
const ISSUED: Record<StateDialect, string> = {
  sqlite: "SELECT seq FROM sqlite_sequence WHERE name = 'audit_event'",
  postgres: 'SELECT seq FROM audit_issued',
};

/** Entries verified per round trip. */
const VERIFY_BATCH = 2000;

export class AuditLog implements AuditSink {
  private constructor(private readonly db: StateDatabase) {}

  /** Opens (creating if needed) the audit log at `file`, or with `state` PostgreSQL's, shared by replicas. */
  static open(file: string, state: StateConfig = { kind: 'sqlite' }): AuditLog {
    return new AuditLog(openStateDatabase(state, () => openSqlite(file, false)));
  }

  /** Opens an existing audit log read-only (for verification); throws if the file does not exist. */
  static openReadOnly(file: string): AuditLog {
    return new AuditLog(new SqliteStateDatabase(openSqlite(file, true)));
  }

  /**
   * Appends one entry and returns it as stored (id and recorded filled in when absent). Throws
   * AuditIdentifierError, before writing anything, when the entry carries something like a national id.
   */
  append(event: AuditEvent): AuditEvent {
    const { stored, text } = this.prepare(event);
    // One append at a time in every process sharing the log: each reads the head it extends, so the chain
    // cannot fork, and each position is the one after the last, so it has no gap.
    this.db.transaction(
      () => {
        const last = this.db.get<{ seq: number; hash: string }>(
          'SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1',
        );
        const prevHash = last?.hash ?? GENESIS;
        const seq = (last?.seq ?? 0) + 1;
        this.db.run(
          `INSERT INTO audit_event (seq, id, recorded, action, outcome, event, prev_hash, hash)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            seq,
            stored.id as string,
            stored.recorded as string,
            stored.action ?? '',
            stored.outcome ?? '',
            text,
            prevHash,
            chainHash(prevHash, text),
          ],
        );
        for (const [kind, value] of indexKeys(stored)) {
          this.db.run('INSERT INTO audit_index (seq, kind, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [
            seq,
            kind,
            value,
          ]);
        }
      },
      { serialise: 'audit chain' },
    );
    return stored;
  }

  /** Throws, as append would, when the entry cannot be recorded; records nothing. A write checks its
   * entry this way before it is stored (src/ingest/persist.ts), so that it fails closed. */
  check(event: AuditEvent): void {
    this.prepare(event);
  }

  /** Whether an entry of this request with this outcome was recorded at or after `since` (recovery). */
  hasEntry(requestId: string, since: string, outcome: AuditOutcome): boolean {
    return (this.search({ requestId, since, outcome: [outcome], count: 0 }).total ?? 0) > 0;
  }

  private prepare(event: AuditEvent): { stored: AuditEvent; text: string } {
    if (event.resourceType !== 'AuditEvent') {
      throw new TypeError('only AuditEvent resources can be audited');
    }
    const stored: AuditEvent = {
      ...event,
      id: event.id ?? newServerId(),
      // One instant format for every entry, so that date filters can compare strings.
      recorded: normaliseInstant(event.recorded ?? new Date().toISOString()),
    };
    const text = canonicalize(stored);
    if (text === undefined) {
      throw new TypeError('the AuditEvent cannot be serialised');
    }
    // A cheap scan of the serialised entry first; the walk that checks and names the path only on a hit.
    if (mayContainNationalId(text)) {
      assertNoNationalId(stored);
    }
    return { stored, text };
  }

  async record(event: AuditEvent): Promise<void> {
    this.append(event);
  }

  read(id: string): AuditEvent | undefined {
    const row = this.db.get<{ event: string }>('SELECT event FROM audit_event WHERE id = ?', [id]);
    return row === undefined ? undefined : (JSON.parse(row.event) as AuditEvent);
  }

  search(params: AuditSearch = {}): SearchResult<AuditEvent> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const key = (kind: IndexKind, value: string): void => {
      where.push('seq IN (SELECT seq FROM audit_index WHERE kind = ? AND value = ?)');
      args.push(kind, value);
    };
    if (params.patientPseudonym !== undefined) key('patient', params.patientPseudonym);
    if (params.agent !== undefined) key('agent', params.agent);
    if (params.entityType !== undefined) key('type', params.entityType);
    if (params.requestId !== undefined) key('request', params.requestId);
    if (params.since !== undefined) {
      where.push('recorded >= ?');
      args.push(normaliseInstant(params.since));
    }
    if (params.before !== undefined) {
      where.push('recorded < ?');
      args.push(normaliseInstant(params.before));
    }
    for (const [column, values] of [
      ['action', params.action],
      ['outcome', params.outcome],
    ] as const) {
      if (values !== undefined) {
        where.push(values.length === 0 ? '1 = 0' : `${column} IN (${values.map(() => '?').join(', ')})`);
        args.push(...values);
      }
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const count = Math.min(Math.max(params.count ?? DEFAULT_COUNT, 0), MAX_COUNT);
    const offset = Math.max(params.offset ?? 0, 0);
    const total = this.db.get<{ n: number }>(
      `SELECT CAST(count(*) AS INTEGER) AS n FROM audit_event ${clause}`,
      args,
    )!.n;
    const order = params.sort === 'oldest' ? 'ASC' : 'DESC';
    const rows =
      count === 0
        ? []
        : this.db.all<{ event: string }>(
            `SELECT event FROM audit_event ${clause} ORDER BY seq ${order} LIMIT ? OFFSET ?`,
            [...args, count, offset],
          );
    return {
      matches: rows.map((r) => JSON.parse(r.event) as AuditEvent),
      included: [],
      total,
      nextOffset: count > 0 && offset + count < total ? offset + count : undefined,
    };
  }

  /**
   * Recomputes the hash chain over every entry; see the module comment for what it detects. One snapshot
   * transaction: every query sees the same state, so servers appending meanwhile cannot make entries look
   * "missing from the end".
   */
  verifyChain(): ChainVerification {
    return this.db.transaction(() => this.verifySnapshot(), { snapshot: true });
  }

  private verifySnapshot(): ChainVerification {
    let prev = GENESIS;
    let count = 0;
    const broken = (position: number, reason: string): ChainVerification => ({
      ok: false,
      count,
      position,
      reason,
    });
    for (;;) {
      const rows = this.db.all<Row>(
        `SELECT seq, recorded, action, outcome, event, prev_hash, hash FROM audit_event
         WHERE seq > ? ORDER BY seq LIMIT ?`,
        [count, VERIFY_BATCH],
      );
      if (rows.length === 0) {
        break;
      }
      const keys = this.indexRowsOf(rows[0].seq, rows[rows.length - 1].seq);
      for (const row of rows) {
        const position = count + 1;
        if (row.seq !== position) {
          return broken(position, `entry ${position} is missing (the next entry is ${row.seq})`);
        }
        if (row.prev_hash !== prev) {
          return broken(
            position,
            `entry ${position} does not follow entry ${position - 1} (previous hash differs)`,
          );
        }
        if (chainHash(prev, row.event) !== row.hash) {
          return broken(position, `entry ${position} was changed (its hash does not match its content)`);
        }
        const event = JSON.parse(row.event) as AuditEvent;
        const expectedKeys = indexKeys(event)
          .map(([kind, value]) => `${kind} ${value}`)
          .sort();
        const storedKeys = (keys.get(row.seq) ?? []).sort();
        if (
          row.recorded !== event.recorded ||
          row.action !== (event.action ?? '') ||
          row.outcome !== (event.outcome ?? '') ||
          JSON.stringify(storedKeys) !== JSON.stringify(expectedKeys)
        ) {
          return broken(
            position,
            `entry ${position} has search columns that disagree with its hashed content`,
          );
        }
        prev = row.hash;
        count = position;
      }
    }
    const issued = this.db.get<{ seq: number }>(ISSUED[this.db.dialect])?.seq ?? 0;
    if (issued > count) {
      return broken(count + 1, `entries ${count + 1} to ${issued} are missing from the end of the log`);
    }
    const orphans = this.db.get<{ seq: number | null }>(
      'SELECT min(seq) AS seq FROM audit_index WHERE seq NOT IN (SELECT seq FROM audit_event)',
    )?.seq;
    if (orphans !== null && orphans !== undefined) {
      return broken(orphans, `index rows exist for entry ${orphans}, which is not in the log`);
    }
    return { ok: true, count, head: prev };
  }

  /** The index rows of entries first…last, as "kind value" per position. */
  private indexRowsOf(first: number, last: number): Map<number, string[]> {
    const keys = new Map<number, string[]>();
    for (const row of this.db.all<{ seq: number; kind: string; value: string }>(
      'SELECT seq, kind, value FROM audit_index WHERE seq >= ? AND seq <= ?',
      [first, last],
    )) {
      keys.set(row.seq, [...(keys.get(row.seq) ?? []), `${row.kind} ${row.value}`]);
    }
    return keys;
  }

  close(): void {
    this.db.close();
  }
}

/** The SQLite file, its pragmas and (unless read-only) its schema. */
function openSqlite(file: string, readonly: boolean): Database.Database {
  if (!readonly) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  }
  const db = new Database(file, { readonly, fileMustExist: readonly });
  db.pragma('busy_timeout = 5000');
  if (!readonly) {
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a crash of the process; an OS crash may lose the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.exec(SCHEMA);
  }
  return db;
}

function chainHash(prevHash: string, eventText: string): string {
  return createHash('sha256').update(prevHash).update(eventText).digest('hex');
}

/** The search keys of an event, derived from its content so that verifyChain can check them. */
function indexKeys(event: AuditEvent): [IndexKind, string][] {
  const keys: [IndexKind, string][] = [
    ...patientPseudonymsOf(event).map((v): [IndexKind, string] => ['patient', v]),
    ...agentIdentifiersOf(event).map((v): [IndexKind, string] => ['agent', v]),
    ...resourceTypesOf(event).map((v): [IndexKind, string] => ['type', v]),
  ];
  const requestId = requestIdOf(event);
  if (requestId !== undefined) {
    keys.push(['request', requestId]);
  }
  // The primary key (kind, value, seq) stores each key once per entry.
  return [...new Map(keys.map((k) => [k.join(' '), k])).values()];
}

/** Stored instants are Date#toISOString() strings, so comparisons are plain string comparisons. */
function normaliseInstant(value: string): string {
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new RangeError(`not an instant: ${value}`);
  }
  return new Date(time).toISOString();
}
