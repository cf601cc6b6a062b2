import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { openPrivateDatabase } from '../store/privateDatabase';
import path from 'node:path';
import { ConfigError } from '../config/ConfigError';
import { canonicalNationalId, type NationalId } from '../identity/nationalId';
import { openStateDatabase, type StateConfig, type StateDatabase } from '../state';

/** How a reservation reached the registry (DESIGN §1). */
export type ReservationChannel = 'portal' | 'clinic' | 'letter' | 'e-mail';

export type ReservationScope = 'patient-privacy' | 'research';

/** One reservation as the register keeps it: no identifier and nothing else about the person. */
export interface ReservationRecord {
  /** Random id, used as Consent.id in responses. */
  id: string;
  status: 'active' | 'inactive';
  scope: ReservationScope;
  channel: ReservationChannel;
  /** When the person reserved (Consent.dateTime as received). */
  reservedAt: string;
  /** When the register recorded it. */
  recordedAt: string;
  withdrawnAt?: string;
  withdrawalChannel?: ReservationChannel;
}

interface ReservationRow {
  id: string;
  status: 'active' | 'inactive';
  scope: ReservationScope;
  channel: ReservationChannel;
  reserved_at: string;
  recorded_at: string;
  withdrawn_at: string | null;
  withdrawal_channel: ReservationChannel | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS reservation (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
  scope TEXT NOT NULL,
  channel TEXT NOT NULL,
  reserved_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  withdrawn_at TEXT,
  withdrawal_channel TEXT
);
CREATE TABLE IF NOT EXISTS reservation_id_hash (
  id_hash TEXT NOT NULL,
  reservation_id TEXT NOT NULL REFERENCES reservation(id),
  PRIMARY KEY (id_hash, reservation_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erased_reference (ref_hash TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_erasure (
  patient_id TEXT PRIMARY KEY,
  pseudonym TEXT NOT NULL,
  reservation_id TEXT NOT NULL REFERENCES reservation(id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS register_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/** The register's statements, in the SQL both state backends speak (src/state/database.ts). */
const SQL = {
  active: `SELECT r.* FROM reservation_id_hash h JOIN reservation r ON r.id = h.reservation_id
           WHERE h.id_hash = ? AND r.status = 'active' LIMIT 1`,
  all: `SELECT r.* FROM reservation_id_hash h JOIN reservation r ON r.id = h.reservation_id
        WHERE h.id_hash = ? ORDER BY r.recorded_at DESC, r.id`,
  byId: 'SELECT * FROM reservation WHERE id = ?',
  hashesOf: 'SELECT id_hash FROM reservation_id_hash WHERE reservation_id = ?',
  insert: `INSERT INTO reservation (id, status, scope, channel, reserved_at, recorded_at)
           VALUES (?, 'active', ?, ?, ?, ?)`,
  addHash: 'INSERT INTO reservation_id_hash (id_hash, reservation_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
  withdraw: `UPDATE reservation SET status = 'inactive', withdrawn_at = ?, withdrawal_channel = ? WHERE id = ?`,
  addErased: 'INSERT INTO erased_reference (ref_hash) VALUES (?) ON CONFLICT DO NOTHING',
  isErased: 'SELECT 1 AS one FROM erased_reference WHERE ref_hash = ?',
  addPending:
    'INSERT INTO pending_erasure (patient_id, pseudonym, reservation_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  pending: 'SELECT patient_id, pseudonym, reservation_id FROM pending_erasure',
  removePending: 'DELETE FROM pending_erasure WHERE patient_id = ?',
  getMeta: 'SELECT value FROM register_meta WHERE name = ?',
  setMeta: 'INSERT INTO register_meta (name, value) VALUES (?, ?)',
};

const KEY_CHECK = 'norpain reservation register';

/**
 * The reservation register (DESIGN §3.2, §7): its own database, never the clinical
 * store. Per reservation it keeps a keyed hash (HMAC-SHA-256 under RESERVATION_KEY) of each national id
 * the person has had, the date, the channel and the status — nothing else about the person.
 *
 * It also keeps keyed hashes of the pseudonymous Patient ids and pseudonyms that were erased
 * (`erased_reference`, not linked to any reservation): a clinic holding an old reference
 * (`Patient/<id>`) must not be able to re-create data about an erased person through it.
 *
 * Its rows go through the state contract (src/state): this SQLite file, or PostgreSQL's tables shared by
 * the replicas (STATE=postgres). Either is synchronous, so each method is atomic within the process, and
 * each is one transaction across processes.
 */
export class ReservationRegister {
  private constructor(
    private readonly db: StateDatabase,
    private readonly key: Buffer,
  ) {
    this.checkKey();
  }

  /** The register's own SQLite file, or with `state` PostgreSQL's tables shared by the replicas. */
  static open(options: { file: string; state?: StateConfig; key: Buffer }): ReservationRegister {
    // Synced at every commit: a reservation is on disk before reserve() returns, hence before the
    // store's erasure and the vault deletion that rely on it; a power loss must not undo a reservation
    // already answered with 201. (Committing unsynced and fsyncing the WAL on the thread pool while the
    // store erases was tried: it was slower here, the concurrent fsyncs queue behind each other in the
    // file system's journal — bench/erase/README.md.)
    const db = openStateDatabase(options.state ?? { kind: 'sqlite' }, () =>
      openPrivateDatabase(options.file, SCHEMA),
    );
    try {
      return new ReservationRegister(db, options.key);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  static defaultFile(dataDir: string): string {
    return path.join(dataDir, 'consent', 'reservations.sqlite');
  }

  /** A wrong key would silently let reserved people back in, so the register refuses to open with one. */
  private checkKey(): void {
    const expected = this.mac('key-check', KEY_CHECK);
    const row = this.db.get<{ value: string }>(SQL.getMeta, ['key-check']);
    if (!row) {
      this.db.run(SQL.setMeta, ['key-check', expected]);
      return;
    }
    const a = Buffer.from(row.value);
    const b = Buffer.from(expected);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw new ConfigError(
        'RESERVATION_KEY does not fit the existing reservation register; configure the key it was made with',
      );
    }
  }

  private mac(label: string, text: string): string {
    return createHmac('sha256', this.key).update(`${label}\u0000${text}`, 'utf8').digest('base64url');
  }

  /** The keyed hash under which a national id is kept. */
  hashNationalId(id: NationalId): string {
    return this.mac('national-id', canonicalNationalId(id));
  }

  private hashReference(kind: 'patient' | 'pseudonym', value: string): string {
    return this.mac(kind, value);
  }

  /** The active reservation covering any of the hashes, if there is one. */
  activeFor(hashes: readonly string[]): ReservationRecord | undefined {
    for (const hash of hashes) {
      const row = this.db.get<ReservationRow>(SQL.active, [hash]);
      if (row) {
        return toRecord(row);
      }
    }
    return undefined;
  }

  /** Every reservation (active or withdrawn) recorded under the hash, newest first. */
  lookup(hash: string): ReservationRecord[] {
    return this.db.all<ReservationRow>(SQL.all, [hash]).map(toRecord);
  }

  read(id: string): ReservationRecord | undefined {
    const row = this.db.get<ReservationRow>(SQL.byId, [id]);
    return row ? toRecord(row) : undefined;
  }

  /** The id hashes recorded for a reservation (for the person lock when withdrawing). */
  hashesOf(reservationId: string): string[] {
    return this.db.all<{ id_hash: string }>(SQL.hashesOf, [reservationId]).map((r) => r.id_hash);
  }

  /**
   * Records a reservation under the hashes, or — when one of them is already actively reserved — adds
   * the hashes to that one (reserving twice is not an error; the erasure simply runs again).
   */
  reserve(input: {
    hashes: readonly string[];
    scope: ReservationScope;
    channel: ReservationChannel;
    reservedAt: string;
    /** The person's pseudonymous Patient id and pseudonym, when the registry holds them (see markErased). */
    erasing?: { patientId: string; pseudonym: string };
  }): { record: ReservationRecord; created: boolean } {
    return this.db.transaction(() => {
      if (input.erasing) {
        this.markErased('patient', input.erasing.patientId);
        this.markErased('pseudonym', input.erasing.pseudonym);
      }
      const existing = this.activeFor(input.hashes);
      const id = existing?.id ?? randomUUID();
      if (!existing) {
        this.db.run(SQL.insert, [id, input.scope, input.channel, input.reservedAt, new Date().toISOString()]);
      }
      for (const hash of input.hashes) {
        this.db.run(SQL.addHash, [hash, id]);
      }
      if (input.erasing) {
        // A durable intention: the erasure completes at start-up or in the background if this process stops.
        this.db.run(SQL.addPending, [input.erasing.patientId, input.erasing.pseudonym, id]);
      }
      return {
        record: toRecord(this.db.get<ReservationRow>(SQL.byId, [id]) as ReservationRow),
        created: !existing,
      };
    });
  }

  /** Erasures recorded with a reservation and not yet complete (the person's Patient id and pseudonym). */
  pendingErasures(): { reservationId: string; patientId: string; pseudonym: string }[] {
    return this.db
      .all<{ patient_id: string; pseudonym: string; reservation_id: string }>(SQL.pending)
      .map((r) => ({ reservationId: r.reservation_id, patientId: r.patient_id, pseudonym: r.pseudonym }));
  }

  /** The person's data are erased, their vault entry gone and nothing is left: the erasure is complete. */
  erasureComplete(patientId: string): void {
    this.db.run(SQL.removePending, [patientId]);
  }

  /** Adds hashes (e.g. the aliases the identity vault knew) to a reservation. */
  addHashes(reservationId: string, hashes: readonly string[]): void {
    this.db.transaction(() => {
      for (const hash of hashes) {
        this.db.run(SQL.addHash, [hash, reservationId]);
      }
    });
  }

  /** Sets the active reservation covering the hashes inactive; undefined when there is none. */
  withdraw(hashes: readonly string[], channel: ReservationChannel): ReservationRecord | undefined {
    return this.db.transaction(() => {
      const active = this.activeFor(hashes);
      if (!active) {
        return undefined;
      }
      this.db.run(SQL.withdraw, [new Date().toISOString(), channel, active.id]);
      return toRecord(this.db.get<ReservationRow>(SQL.byId, [active.id]) as ReservationRow);
    });
  }

  /** Remembers that a pseudonymous Patient id / pseudonym was erased, so old references stay refused. */
  markErased(kind: 'patient' | 'pseudonym', value: string): void {
    this.db.run(SQL.addErased, [this.hashReference(kind, value)]);
  }

  wasErased(kind: 'patient' | 'pseudonym', value: string): boolean {
    return this.db.get(SQL.isErased, [this.hashReference(kind, value)]) !== undefined;
  }

  /** After an erasure: no copy of `texts` (a completed pending erasure's row) left outside the live rows. */
  scrub(texts: readonly string[]): void {
    this.db.scrub(texts, ['pending_erasure']);
  }

  close(): void {
    this.db.close();
  }
}

function toRecord(row: ReservationRow): ReservationRecord {
  const record: ReservationRecord = {
    id: row.id,
    status: row.status,
    scope: row.scope,
    channel: row.channel,
    reservedAt: row.reserved_at,
    recordedAt: row.recorded_at,
  };
  if (row.withdrawn_at !== null) {
    record.withdrawnAt = row.withdrawn_at;
  }
  if (row.withdrawal_channel !== null) {
    record.withdrawalChannel = row.withdrawal_channel;
  }
  return record;
}
