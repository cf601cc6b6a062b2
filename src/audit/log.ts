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
import { assertNoNationalId, mayContainNationalId } from './nationalIdGuard';

/**
 * The audit log: FHIR AuditEvents in an append-only SQLite database of their own, next to (never
 * inside) the clinical store, so that no FHIR interaction, erasure or store backend can touch it.
 *
 * Tamper evidence. Triggers refuse UPDATE and DELETE, and every entry stores
 *   hash = sha256(previous entry's hash + RFC 8785 canonical JSON of the AuditEvent)
 * starting from 64 zeros. verifyChain() recomputes the chain and also checks that the search columns
 * and index rows agree with the hashed event, that positions are contiguous and that the last entry
 * has not been cut off (AUTOINCREMENT keeps the highest position ever issued in sqlite_sequence).
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

export const AUDIT_LOG_FILE = 'audit.sqlite';

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
  keys: string;
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

export class AuditLog implements AuditSink {
  private readonly db: Database.Database;
  private readonly appendTx: (event: AuditEvent, text: string) => void;

  private constructor(
    readonly file: string,
    readonly: boolean,
  ) {
    this.db = new Database(file, { readonly, fileMustExist: readonly });
    this.db.pragma('busy_timeout = 5000');
    if (!readonly) {
      this.db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode survives a crash of the process; an OS crash may lose the last commits.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.exec(SCHEMA);
    }
    const last = this.db.prepare<[], { hash: string }>(
      'SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1',
    );
    const insert = this.db.prepare(
      `INSERT INTO audit_event (id, recorded, action, outcome, event, prev_hash, hash)
       VALUES (@id, @recorded, @action, @outcome, @event, @prevHash, @hash)`,
    );
    const insertKey = this.db.prepare(
      'INSERT OR IGNORE INTO audit_index (seq, kind, value) VALUES (?, ?, ?)',
    );
    const tx = this.db.transaction((event: AuditEvent, text: string) => {
      const prevHash = last.get()?.hash ?? GENESIS;
      const { lastInsertRowid } = insert.run({
        id: event.id,
        recorded: event.recorded,
        action: event.action ?? '',
        outcome: event.outcome ?? '',
        event: text,
        prevHash,
        hash: chainHash(prevHash, text),
      });
      for (const [kind, value] of indexKeys(event)) {
        insertKey.run(lastInsertRowid, kind, value);
      }
    });
    // IMMEDIATE takes the write lock before reading the head, so two processes cannot fork the chain.
    this.appendTx = (event, text) => tx.immediate(event, text);
  }

  /** Opens (creating if needed) the audit log at `file`. */
  static open(file: string): AuditLog {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return new AuditLog(file, false);
  }

  /** Opens an existing audit log read-only (for verification); throws if the file does not exist. */
  static openReadOnly(file: string): AuditLog {
    return new AuditLog(file, true);
  }

  /**
   * Appends one entry and returns it as stored (id and recorded filled in when absent). Throws
   * AuditIdentifierError, before writing anything, when the entry carries something like a national id.
   */
  append(event: AuditEvent): AuditEvent {
    const { stored, text } = this.prepare(event);
    this.appendTx(stored, text);
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
    const row = this.db
      .prepare<[string], { event: string }>('SELECT event FROM audit_event WHERE id = ?')
      .get(id);
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
        where.push(values.length === 0 ? '0' : `${column} IN (${values.map(() => '?').join(', ')})`);
        args.push(...values);
      }
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const count = Math.min(Math.max(params.count ?? DEFAULT_COUNT, 0), MAX_COUNT);
    const offset = Math.max(params.offset ?? 0, 0);
    const total = this.db
      .prepare<(string | number)[], { n: number }>(`SELECT count(*) AS n FROM audit_event ${clause}`)
      .get(...args)!.n;
    const order = params.sort === 'oldest' ? 'ASC' : 'DESC';
    const rows =
      count === 0
        ? []
        : this.db
            .prepare<(string | number)[], { event: string }>(
              `SELECT event FROM audit_event ${clause} ORDER BY seq ${order} LIMIT ? OFFSET ?`,
            )
            .all(...args, count, offset);
    return {
      matches: rows.map((r) => JSON.parse(r.event) as AuditEvent),
      included: [],
      total,
      nextOffset: count > 0 && offset + count < total ? offset + count : undefined,
    };
  }

  /**
   * Recomputes the hash chain over every entry; see the module comment for what it detects. One read
   * transaction: every query sees the same snapshot (WAL), so a server appending meanwhile cannot make
   * entries look "missing from the end".
   */
  verifyChain(): ChainVerification {
    return this.db.transaction(() => this.verifySnapshot())();
  }

  private verifySnapshot(): ChainVerification {
    const rows = this.db.prepare<[], Row>(
      `SELECT seq, recorded, action, outcome, event, prev_hash, hash,
              (SELECT json_group_array(k) FROM
                 (SELECT kind || ' ' || value AS k FROM audit_index i WHERE i.seq = e.seq ORDER BY k)) AS keys
       FROM audit_event e ORDER BY seq`,
    );
    let prev = GENESIS;
    let count = 0;
    const broken = (position: number, reason: string): ChainVerification => ({
      ok: false,
      count,
      position,
      reason,
    });
    for (const row of rows.iterate()) {
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
      const expectedKeys = JSON.stringify(
        indexKeys(event)
          .map(([kind, value]) => `${kind} ${value}`)
          .sort(),
      );
      if (
        row.recorded !== event.recorded ||
        row.action !== (event.action ?? '') ||
        row.outcome !== (event.outcome ?? '') ||
        row.keys !== expectedKeys
      ) {
        return broken(position, `entry ${position} has search columns that disagree with its hashed content`);
      }
      prev = row.hash;
      count = position;
    }
    const issued =
      this.db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'audit_event'").get()
        ?.seq ?? 0;
    if (issued > count) {
      return broken(count + 1, `entries ${count + 1} to ${issued} are missing from the end of the log`);
    }
    const orphans = this.db
      .prepare<[], { seq: number }>(
        'SELECT min(seq) AS seq FROM audit_index WHERE seq NOT IN (SELECT seq FROM audit_event)',
      )
      .get()?.seq;
    if (orphans !== null && orphans !== undefined) {
      return broken(orphans, `index rows exist for entry ${orphans}, which is not in the log`);
    }
    return { ok: true, count, head: prev };
  }

  close(): void {
    this.db.close();
  }
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
