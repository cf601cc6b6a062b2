import { openPrivateDatabase } from '../../store/privateDatabase';
import path from 'node:path';
import { ConfigError } from '../../config/ConfigError';
import { canonicalNationalId, kindRank, type NationalId } from '../nationalId';
import type { Pseudonymiser } from '../pseudonym';
import type { VaultAuditSink, VaultPurpose, VaultReadContext } from './audit';
import { VaultCrypto } from './crypto';
import { newServerId } from '../serverId';
import { openStateDatabase, type StateConfig, type StateDatabase } from '../../state';

/** A person as the write path knows them: no national id, only pseudonymous handles. */
export interface VaultPerson {
  /** Logical id of the person's pseudonymous Patient in the clinical store; stable for life (re-keying keeps it). */
  patientId: string;
  /** The registry pseudonym (the Patient's only identifier). */
  pseudonym: string;
}

export interface LinkResult {
  person: VaultPerson;
  /** The person was not known before. */
  created: boolean;
  /** Only at commit: a person the rehearsal created, whom the vault had learnt of meanwhile; its data
   * must move to `person`, its Patient go. */
  merged: VaultPerson[];
}

/** The ids of one write belong to more than one registered person; nothing was linked. */
export class SeveralPersonsError extends Error {
  constructor() {
    super('the national ids belong to more than one registered person');
    this.name = 'SeveralPersonsError';
  }
}

/**
 * A link rehearsed for a write that is not yet stored (see `rehearse`): the ids, and the Patient id the
 * rehearsal gave a person it created, so that `commit` creates that person with the same id.
 */
export interface PlannedLink {
  ids: NationalId[];
  createdPatientId?: string;
}

export interface IdentifiedPerson extends VaultPerson {
  ids: NationalId[];
}

export interface RekeyChange extends VaultPerson {
  previousPseudonym: string;
}

interface PersonRow {
  id: number;
  patient_id: string;
  pseudonym: string;
  key_version: number;
  sealed: Buffer;
}

interface SealedRecord {
  /** Canonical id the pseudonym is computed from. */
  primary: string;
  ids: NationalId[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS person (
  id INTEGER PRIMARY KEY,
  patient_id TEXT NOT NULL UNIQUE,
  pseudonym TEXT NOT NULL UNIQUE,
  key_version INTEGER NOT NULL,
  sealed BLOB NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alias (
  id_hash TEXT PRIMARY KEY,
  person_id INTEGER NOT NULL REFERENCES person(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS alias_person ON alias(person_id);
CREATE TABLE IF NOT EXISTS vault_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
`;

/** The vault's statements, in the SQL both state backends speak (src/state/database.ts). */
const SQL = {
  aliasPerson: 'SELECT p.* FROM alias a JOIN person p ON p.id = a.person_id WHERE a.id_hash = ?',
  byPseudonym: 'SELECT * FROM person WHERE pseudonym = ?',
  byPatientId: 'SELECT * FROM person WHERE patient_id = ?',
  insertPerson:
    'INSERT INTO person (patient_id, pseudonym, key_version, sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
  updatePerson: 'UPDATE person SET pseudonym = ?, key_version = ?, sealed = ?, updated_at = ? WHERE id = ?',
  deletePerson: 'DELETE FROM person WHERE id = ?',
  upsertAlias:
    'INSERT INTO alias (id_hash, person_id) VALUES (?, ?) ON CONFLICT(id_hash) DO UPDATE SET person_id = excluded.person_id',
  repointAliases: 'UPDATE alias SET person_id = ? WHERE person_id = ?',
  deleteAliases: 'DELETE FROM alias WHERE person_id = ?',
  staleKeys: 'SELECT * FROM person WHERE key_version != ? AND id > ? ORDER BY id LIMIT ?',
  allRows: 'SELECT * FROM person ORDER BY id',
  count: 'SELECT CAST(count(*) AS INTEGER) AS n FROM person',
  getMeta: 'SELECT value FROM vault_meta WHERE name = ?',
  setMeta: 'INSERT INTO vault_meta (name, value) VALUES (?, ?)',
};

const KEY_CHECK = 'norpain identity vault';
/** Associated data of sealed planned links, so that no other sealed record can pass for them. */
const PLANNED_LINKS = 'planned-links';

/**
 * The identity vault (DESIGN §4): pseudonym ↔ national id(s), in its own database, separate from the
 * clinical store. National ids are stored only encrypted (AES-256-GCM); the alias table holds keyed
 * hashes of each id a person has had, so lookups need no decryption. Reading ids back is possible only
 * through the purpose-named methods below, and each such read is recorded through the audit sink.
 *
 * The vault keeps its rows through the state contract (src/state): its own SQLite file by default, or
 * PostgreSQL's tables shared by the replicas. Either is synchronous, so in one Node process each method is
 * atomic with respect to the others; across processes, the person locks keep writes about one person
 * apart (src/consent/personLock.ts), and each method is one transaction.
 */
export class IdentityVault {
  private readonly crypto: VaultCrypto;
  /** The links made while a rehearsal runs; undefined otherwise. */
  private rehearsal: PlannedLink[] | undefined;

  private constructor(
    private readonly db: StateDatabase,
    vaultKey: Buffer,
    private readonly pseudonymiser: Pseudonymiser,
    private readonly audit: VaultAuditSink,
  ) {
    this.crypto = new VaultCrypto(vaultKey);
    this.checkKey();
  }

  /**
   * Opens (creating if needed) the vault: the SQLite file, or with `state` PostgreSQL's tables. A VAULT_KEY
   * that does not fit an existing vault is a ConfigError.
   */
  static open(options: {
    file: string;
    state?: StateConfig;
    vaultKey: Buffer;
    pseudonymiser: Pseudonymiser;
    audit: VaultAuditSink;
  }): IdentityVault {
    // Durable and secure_delete: an erased person's sealed ids must not linger (DESIGN §3.2).
    const db = openStateDatabase(options.state ?? { kind: 'sqlite' }, () =>
      openPrivateDatabase(options.file, SCHEMA),
    );
    try {
      return new IdentityVault(db, options.vaultKey, options.pseudonymiser, options.audit);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  static defaultFile(dataDir: string): string {
    return path.join(dataDir, 'identity', 'vault.sqlite');
  }

  private checkKey(): void {
    const row = this.db.get<{ value: Buffer }>(SQL.getMeta, ['key-check']);
    if (!row) {
      this.db.run(SQL.setMeta, ['key-check', this.crypto.seal(KEY_CHECK, 'key-check')]);
      return;
    }
    let text: string | undefined;
    try {
      text = this.crypto.open(row.value, 'key-check');
    } catch {
      text = undefined;
    }
    if (text !== KEY_CHECK) {
      throw new ConfigError(
        'VAULT_KEY does not open the existing identity vault; configure the key it was made with',
      );
    }
  }

  // ---- the write path: link ids to a person, reveal nothing ----

  /**
   * Finds or creates the person the ids belong to, linking ids new to the vault as aliases of that
   * person. When the ids belong to two or more known persons, nothing is linked: SeveralPersonsError
   * (DESIGN §4: two registered persons are never merged by a write, only by staff, see `merge`).
   */
  link(ids: readonly NationalId[]): LinkResult {
    const result = this.linkRows(ids, undefined);
    this.rehearsal?.push({
      ids: [...ids],
      createdPatientId: result.created ? result.person.patientId : undefined,
    });
    return result;
  }

  /**
   * Runs `plan` — which must be synchronous — in a vault transaction that is rolled back at the end:
   * its `link` calls (and every find within it) see each other's changes, but the vault keeps none of
   * them. Returns plan's result and the links it made, for `commit` once the write they belong to is
   * stored; a write that fails simply never commits, so it leaves no person or alias behind.
   */
  rehearse<T>(plan: () => T): { result: T; links: PlannedLink[] } {
    if (this.rehearsal) {
      throw new Error('a vault rehearsal is already running');
    }
    const rollback = new Error('rehearsal');
    let outcome: { result: T; links: PlannedLink[] } | undefined;
    this.rehearsal = [];
    try {
      this.db.transaction(() => {
        outcome = { result: plan(), links: this.rehearsal ?? [] };
        throw rollback;
      });
    } catch (err) {
      if (err !== rollback) {
        throw err;
      }
    } finally {
      this.rehearsal = undefined;
    }
    return outcome as { result: T; links: PlannedLink[] };
  }

  /**
   * Makes rehearsed links, in order, in one transaction. Persons are created with the Patient ids the
   * rehearsal gave them. Should the vault have learnt of the person meanwhile (the caller is meant to
   * prevent that), the rehearsed Patient is reported in `merged`, so its data move to the person known.
   */
  commit(links: readonly PlannedLink[]): LinkResult[] {
    return this.db.transaction(() => links.map((l) => this.linkRows(l.ids, l.createdPatientId)));
  }

  /** Rehearsed links sealed for the write journal (src/ingest/journal.ts): they hold national ids. */
  sealLinks(links: readonly PlannedLink[]): string {
    return this.crypto.seal(JSON.stringify(links), PLANNED_LINKS).toString('base64');
  }

  /** Links sealed by sealLinks, for recovery to commit once it found their write stored. */
  openLinks(sealed: string): PlannedLink[] {
    return JSON.parse(this.crypto.open(Buffer.from(sealed, 'base64'), PLANNED_LINKS)) as PlannedLink[];
  }

  private linkRows(ids: readonly NationalId[], createdPatientId: string | undefined): LinkResult {
    if (ids.length === 0) {
      throw new Error('link needs at least one national id');
    }
    return this.db.transaction((): LinkResult => {
      const unique = dedupe(ids);
      const found = new Map<number, PersonRow>();
      let unknown = 0;
      for (const id of unique) {
        const row = this.aliasPerson(id);
        if (row) {
          found.set(row.id, row);
        } else {
          unknown++;
        }
      }
      if (found.size > 1) {
        throw new SeveralPersonsError();
      }
      const lost = (survivor: PersonRow): VaultPerson[] =>
        createdPatientId !== undefined && createdPatientId !== survivor.patient_id
          ? [{ patientId: createdPatientId, pseudonym: survivor.pseudonym }]
          : [];
      const [row] = found.values();
      if (row && unknown === 0) {
        // The usual case: every id already belongs to this one person; nothing to decrypt or change.
        return {
          person: { patientId: row.patient_id, pseudonym: row.pseudonym },
          created: false,
          merged: lost(row),
        };
      }
      if (!row) {
        return { person: this.insertPerson(unique, createdPatientId), created: true, merged: [] };
      }
      // A new id of a known person (a new FNR, a D-number replaced by an FNR): linked automatically.
      return { person: this.absorb(row, [], unique), created: false, merged: lost(row) };
    });
  }

  /**
   * Staff merge (Patient/$merge, src/identity/merge.ts): the source person's ids become the target's and
   * the source leaves the vault. Returns the target as it is now (its pseudonym changes only when the
   * source brought a better-ranked id) and the retired source, or undefined when either is unknown.
   */
  merge(
    sourcePatientId: string,
    targetPatientId: string,
  ): { person: VaultPerson; retired: VaultPerson } | undefined {
    if (sourcePatientId === targetPatientId) {
      throw new Error('a person cannot be merged into themselves');
    }
    return this.db.transaction(() => {
      const source = this.byPatientId(sourcePatientId);
      const target = this.byPatientId(targetPatientId);
      if (!source || !target) {
        return undefined;
      }
      return {
        person: this.absorb(target, [source], []),
        retired: { patientId: source.patient_id, pseudonym: source.pseudonym },
      };
    });
  }

  private insertPerson(ids: NationalId[], createdPatientId: string | undefined): VaultPerson {
    const now = new Date().toISOString();
    const primary = canonicalNationalId(best(ids));
    const person: VaultPerson = {
      patientId: createdPatientId ?? newServerId(),
      pseudonym: this.pseudonymiser.pseudonym(primary),
    };
    const sealed = this.crypto.seal(
      JSON.stringify({ primary, ids } satisfies SealedRecord),
      person.patientId,
    );
    const inserted = this.db.get<{ id: number }>(SQL.insertPerson, [
      person.patientId,
      person.pseudonym,
      this.pseudonymiser.currentVersion,
      sealed,
      now,
      now,
    ]) as { id: number };
    for (const id of ids) {
      this.db.run(SQL.upsertAlias, [this.idHash(id), inserted.id]);
    }
    return person;
  }

  /**
   * Gives `survivor` the ids of `others` (whose rows go) and `extra`. The pseudonym is computed from the
   * best-ranked id (FNR > D-number > felles hjelpenummer > H-number); it changes only when a
   * better-ranked id arrives.
   */
  private absorb(survivor: PersonRow, others: PersonRow[], extra: NationalId[]): VaultPerson {
    const survivorRecord = this.unseal(survivor);
    const all = dedupe([...survivorRecord.ids, ...others.flatMap((r) => this.unseal(r).ids), ...extra]);
    const bestId = best(all);
    const survivorPrimary = all.find((id) => canonicalNationalId(id) === survivorRecord.primary);
    const keepPrimary =
      survivorPrimary !== undefined && kindRank[survivorPrimary.kind] <= kindRank[bestId.kind];
    const primary = keepPrimary ? survivorRecord.primary : canonicalNationalId(bestId);
    const keyVersion = keepPrimary ? survivor.key_version : this.pseudonymiser.currentVersion;
    const pseudonym = keepPrimary ? survivor.pseudonym : this.pseudonymiser.pseudonym(primary);
    for (const row of others) {
      this.db.run(SQL.repointAliases, [survivor.id, row.id]);
      this.db.run(SQL.deletePerson, [row.id]);
    }
    if (all.length !== survivorRecord.ids.length || primary !== survivorRecord.primary) {
      const sealed = this.crypto.seal(
        JSON.stringify({ primary, ids: all } satisfies SealedRecord),
        survivor.patient_id,
      );
      this.db.run(SQL.updatePerson, [pseudonym, keyVersion, sealed, new Date().toISOString(), survivor.id]);
      for (const id of extra) {
        this.db.run(SQL.upsertAlias, [this.idHash(id), survivor.id]);
      }
    }
    return { patientId: survivor.patient_id, pseudonym };
  }

  /** The keyed hash the vault looks the id up by (VAULT_KEY's lookup subkey): names it without revealing it. */
  idHash(id: NationalId): string {
    return this.crypto.lookupHash(canonicalNationalId(id));
  }

  /** The person an id belongs to, if known. Reveals no id, so it is not audited. */
  find(id: NationalId): VaultPerson | undefined {
    const row = this.aliasPerson(id);
    return row ? { patientId: row.patient_id, pseudonym: row.pseudonym } : undefined;
  }

  findByPseudonym(pseudonym: string): VaultPerson | undefined {
    const row = this.db.get<PersonRow>(SQL.byPseudonym, [pseudonym]);
    return row ? { patientId: row.patient_id, pseudonym: row.pseudonym } : undefined;
  }

  findByPatientId(patientId: string): VaultPerson | undefined {
    const row = this.byPatientId(patientId);
    return row ? { patientId: row.patient_id, pseudonym: row.pseudonym } : undefined;
  }

  count(): number {
    return this.db.get<{ n: number }>(SQL.count)?.n ?? 0;
  }

  // ---- audited reads: the only ways national ids leave the vault ----

  /** Follow-up dispatch needs the ids to address the invitation (e.g. through helsenorge). */
  forFollowUp(patientId: string, ctx: VaultReadContext): NationalId[] | undefined {
    return this.readOne('follow-up', this.byPatientId(patientId), ctx);
  }

  /** A person's own access request (innsyn): the portal token names one id; returns the person with all ids they have had. */
  forAccessRequest(id: NationalId, ctx: VaultReadContext): IdentifiedPerson | undefined {
    const row = this.aliasPerson(id);
    const ids = this.readOne('access-request', row, ctx);
    return row && ids ? { patientId: row.patient_id, pseudonym: row.pseudonym, ids } : undefined;
  }

  /** Coverage linkage against NPR: every person with their ids. Recorded once, with the count. */
  forCoverageLinkage(ctx: VaultReadContext): IdentifiedPerson[] {
    const people = this.db
      .all<PersonRow>(SQL.allRows)
      .map((row) => ({ patientId: row.patient_id, pseudonym: row.pseudonym, ids: this.unseal(row).ids }));
    this.record('coverage-linkage', [], people.length, ctx);
    return people;
  }

  /**
   * Deletes the person (reservation, DESIGN §3.2) and returns the ids they had, so the caller can keep
   * the keyed hashes that keep them out. Returns undefined when the person is not in the vault. The
   * erasure then scrubs the vault's files (scrub, src/consent/personCopies.ts).
   */
  erase(patientId: string, ctx: VaultReadContext): NationalId[] | undefined {
    return this.db.transaction(() => {
      const row = this.byPatientId(patientId);
      const found = this.readOne('erasure', row, ctx);
      if (row) {
        this.db.run(SQL.deleteAliases, [row.id]);
        this.db.run(SQL.deletePerson, [row.id]);
      }
      return found;
    });
  }

  /** After an erasure: no copy of `texts` left outside the live rows (StateDatabase.scrub). The person's
   * row is where the Patient id and pseudonym are in clear (the ids are sealed, the aliases hashed). */
  scrub(texts: readonly string[]): void {
    this.db.scrub(texts, ['person']);
  }

  /**
   * Re-keys every person whose pseudonym was made with another key version than the current one. For
   * each, `apply` is called first (it rewrites the clinical store); only when it succeeds is the vault
   * row updated, so an interrupted run can simply be started again. Pseudonyms are deterministic, so a
   * repeated `apply` for the same person writes the same value. `hold` takes the lock writes about the
   * person take, for the person's apply and update, so servers may keep serving meanwhile (the row is
   * read again under it: a write may have merged or erased the person). Returns the number re-keyed.
   */
  async rekey(
    apply: (change: RekeyChange) => Promise<void>,
    ctx: VaultReadContext,
    hold: (patientId: string) => Promise<() => void> = () => Promise.resolve(() => undefined),
  ): Promise<number> {
    const version = this.pseudonymiser.currentVersion;
    let after = 0;
    let total = 0;
    for (;;) {
      const batch = this.db.all<PersonRow>(SQL.staleKeys, [version, after, 200]);
      if (batch.length === 0) {
        break;
      }
      for (const { id, patient_id: patientId } of batch) {
        after = id;
        const release = await hold(patientId);
        try {
          const row = this.byPatientId(patientId);
          if (!row || row.key_version === version) {
            continue;
          }
          const record = this.unseal(row);
          const pseudonym = this.pseudonymiser.pseudonym(record.primary, version);
          await apply({ patientId, pseudonym, previousPseudonym: row.pseudonym });
          this.db.run(SQL.updatePerson, [pseudonym, version, row.sealed, new Date().toISOString(), row.id]);
          total++;
        } finally {
          release();
        }
      }
    }
    this.record('rekey', [], total, ctx);
    return total;
  }

  close(): void {
    this.db.close();
  }

  private aliasPerson(id: NationalId): PersonRow | undefined {
    return this.db.get<PersonRow>(SQL.aliasPerson, [this.idHash(id)]);
  }

  private byPatientId(patientId: string): PersonRow | undefined {
    return this.db.get<PersonRow>(SQL.byPatientId, [patientId]);
  }

  private readOne(
    purpose: VaultPurpose,
    row: PersonRow | undefined,
    ctx: VaultReadContext,
  ): NationalId[] | undefined {
    if (!row) {
      return undefined;
    }
    const ids = this.unseal(row).ids;
    this.record(purpose, [row.patient_id], 1, ctx);
    return ids;
  }

  private record(purpose: VaultPurpose, patientIds: string[], count: number, ctx: VaultReadContext): void {
    this.audit.record({ ...ctx, purpose, patientIds, count, at: new Date().toISOString() });
  }

  private unseal(row: PersonRow): SealedRecord {
    return JSON.parse(this.crypto.open(row.sealed, row.patient_id)) as SealedRecord;
  }
}

function dedupe(ids: readonly NationalId[]): NationalId[] {
  const seen = new Map<string, NationalId>();
  for (const id of ids) {
    seen.set(canonicalNationalId(id), id);
  }
  return [...seen.values()];
}

/** The best-ranked id; among equals the first (so an existing primary keeps its place). */
function best(ids: readonly NationalId[]): NationalId {
  return ids.reduce((a, b) => (kindRank[b.kind] < kindRank[a.kind] ? b : a));
}
