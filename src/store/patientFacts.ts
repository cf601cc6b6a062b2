import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Bundle, Patient, Resource, ResourceType } from '@medplum/fhirtypes';
import { unitsOf } from '../auth/unitLabel';
import { isFhirError } from '../fhir/outcomes';
import { parseEntryUrl } from '../fhir/reference';
import { openStateDatabase, type StateConfig, type StateDatabase } from '../state';
import { isAmbiguousWrite } from './ambiguousWrite';
import type { FhirStore } from './FhirStore';
import { GroupCommit } from './groupCommit';
import { openPrivateDatabase } from './privateDatabase';

/**
 * What a write needs to know of a stored Patient before it may refer to it — that it exists, and which
 * units' labels it carries (src/auth/view.ts) — kept in the façade's state, so that a response about a
 * known person does not first ask the store for its Patient (a HAPI round trip per write otherwise).
 *
 * It is a copy of what the store holds, correct by construction rather than by care: every process
 * reaches the store through `withPatientFacts` (src/server.ts, `openStore`), which marks a Patient's
 * facts unknown, durably, before any write that can change it is sent, and states them again only from
 * the store's answer. The marks are in the state every replica shares (STATE=postgres), so a write
 * through one replica is seen by all. A fact is trusted only when no write of that Patient is under way
 * and none has overlapped another since it was stated; a write whose Patient the store does not name
 * beforehand (a conditional update, an erasure, which also reaches what refers to the person) makes every
 * fact unknown, by the `epoch` they must match. A write that leaves its outcome unknown (no answer from
 * the store) never ends: its facts stay unknown. Unknown facts are read from the store and stated again
 * by that reader only if nothing began writing the Patient since it looked (`seq`, `epoch`). Only
 * Patients known to be stored are held; absence is always asked of the store.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS patient_fact (
  patient_id TEXT PRIMARY KEY,
  incarnation TEXT NOT NULL,
  units TEXT,
  writers INTEGER NOT NULL,
  solo INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  epoch INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS patient_fact_epoch (
  only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
  epoch INTEGER NOT NULL,
  writers INTEGER NOT NULL
);
INSERT INTO patient_fact_epoch (only_row, epoch, writers) VALUES (1, 0, 0) ON CONFLICT (only_row) DO NOTHING;
`;

/** The statements, in the SQL both state backends speak (src/state/database.ts). */
const SQL = {
  read: `SELECT f.units, f.writers, f.seq, f.epoch AS fact_epoch, g.epoch, g.writers AS global_writers
         FROM patient_fact_epoch g LEFT JOIN patient_fact f ON f.patient_id = ? WHERE g.only_row = 1`,
  // A write begins: unknown until it ends; it wrote alone only if no other write was under way.
  // (A row forgotten and made again is another incarnation: a write begun on the old one ends nothing.)
  begin: `INSERT INTO patient_fact (patient_id, incarnation, units, writers, solo, seq, epoch)
          SELECT CAST(? AS TEXT), CAST(? AS TEXT), NULL, 1, 1, 1, epoch FROM patient_fact_epoch WHERE only_row = 1
          ON CONFLICT (patient_id) DO UPDATE SET units = NULL, writers = patient_fact.writers + 1,
            solo = CASE WHEN patient_fact.writers = 0 THEN 1 ELSE 0 END, seq = patient_fact.seq + 1,
            epoch = excluded.epoch
          RETURNING incarnation`,
  // It ended: its answer states the facts if it was the only write since the last one ended.
  end: `UPDATE patient_fact SET writers = writers - 1,
          units = CASE WHEN writers = 1 AND solo = 1 THEN CAST(? AS TEXT) ELSE NULL END
        WHERE patient_id = ? AND incarnation = ? AND writers > 0`,
  forget: 'DELETE FROM patient_fact WHERE patient_id = ?',
  beginAll: 'UPDATE patient_fact_epoch SET epoch = epoch + 1, writers = writers + 1 WHERE only_row = 1',
  endAll: 'UPDATE patient_fact_epoch SET epoch = epoch + 1, writers = writers - 1 WHERE only_row = 1',
  // A reader states what it read only if no write began since it looked.
  learn: `UPDATE patient_fact SET units = ?, epoch = ?
          WHERE patient_id = ? AND seq = ? AND writers = 0
            AND EXISTS (SELECT 1 FROM patient_fact_epoch WHERE only_row = 1 AND epoch = ? AND writers = 0)`,
  learnNew: `INSERT INTO patient_fact (patient_id, incarnation, units, writers, solo, seq, epoch)
             SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), 0, 1, 0, epoch FROM patient_fact_epoch WHERE only_row = 1 AND epoch = ? AND writers = 0
             ON CONFLICT (patient_id) DO NOTHING`,
};

interface FactRow {
  units: string | null;
  writers: number | null;
  seq: number | null;
  fact_epoch: number | null;
  epoch: number;
  global_writers: number;
}

type Begun = { id: string; incarnation: string }[];

/** Where a reader stands: the facts, or what it must match to state them after reading the store. */
type Lookup = { units: string[] } | { ticket?: { seq: number | null; epoch: number } };

export class PatientFacts {
  private constructor(
    private readonly db: StateDatabase,
    /** On SQLite: a write's mark is on disk before the write is sent, synced off the event loop and
     * shared by the writes under way (src/store/groupCommit.ts); PostgreSQL commits durably. What follows
     * a mark (its end, a reader's statement) needs no sync: lost, it leaves the Patient unknown. */
    private readonly commits: GroupCommit | undefined,
  ) {}

  /** DATA_DIR/patient-facts.sqlite, or with STATE=postgres the state's tables (migration 8). */
  static open(dataDir: string, state: StateConfig): PatientFacts {
    let commits: GroupCommit | undefined;
    const db = openStateDatabase(state, () => {
      const sqlite = openPrivateDatabase(path.join(dataDir, 'patient-facts.sqlite'), SCHEMA);
      commits = GroupCommit.of(sqlite);
      return sqlite;
    });
    return new PatientFacts(db, commits);
  }

  lookup(patientId: string): Lookup {
    const row = this.db.get<FactRow>(SQL.read, [patientId]);
    if (row === undefined || row.global_writers !== 0) return {};
    if (row.writers === null) return { ticket: { seq: null, epoch: row.epoch } };
    if (row.writers !== 0) return {};
    if (row.units !== null && row.fact_epoch === row.epoch)
      return { units: JSON.parse(row.units) as string[] };
    return { ticket: { seq: row.seq, epoch: row.epoch } };
  }

  learn(patientId: string, ticket: { seq: number | null; epoch: number }, units: string[]): void {
    const text = JSON.stringify(units);
    if (ticket.seq === null) this.db.run(SQL.learnNew, [patientId, randomUUID(), text, ticket.epoch]);
    else this.db.run(SQL.learn, [text, ticket.epoch, patientId, ticket.seq, ticket.epoch]);
  }

  /** A write of these Patients begins; resolves, once that is durable, with what `end` needs to end it. */
  async begin(patientIds: readonly string[]): Promise<Begun> {
    const begun = this.db.transaction(() =>
      patientIds.map((id) => {
        const row = this.db.get<{ incarnation: string }>(SQL.begin, [id, randomUUID()]);
        return { id, incarnation: row?.incarnation as string };
      }),
    );
    await this.commits?.durable();
    return begun;
  }

  /** The write ended; `units` of each Patient as the store answered it (undefined: not known). */
  end(begun: Begun, units: (patientId: string) => string[] | undefined): void {
    this.db.transaction(() => {
      for (const { id, incarnation } of begun) {
        const known = units(id);
        this.db.run(SQL.end, [known === undefined ? null : JSON.stringify(known), id, incarnation]);
      }
    });
  }

  async beginAll(): Promise<void> {
    this.db.run(SQL.beginAll);
    await this.commits?.durable();
  }

  /** Ends a write that could change any Patient; `erased` Patients leave no row behind. */
  async endAll(erased: readonly string[] = []): Promise<void> {
    this.db.transaction(() => {
      for (const id of erased) this.db.run(SQL.forget, [id]);
      this.db.run(SQL.endAll);
    });
    await this.commits?.durable();
  }

  /** After an erasure: no copy of `texts` (an erased Patient's row) left outside the live rows. */
  scrub(texts: readonly string[]): void {
    this.db.scrub(texts, ['patient_fact']);
  }

  async close(): Promise<void> {
    this.db.close();
    await this.commits?.close();
  }
}

export interface StoredPatients {
  /** The unit labels of the stored Patient, or undefined when there is none (never stored, deleted, erased). */
  patientUnits(patientId: string): Promise<string[] | undefined>;
}

/** A store whose Patients' facts are kept (see above), and read through them. */
export interface FactfulStore extends FhirStore, StoredPatients {
  /** The facts kept (for the erasure to scrub, src/consent/personCopies.ts). */
  readonly facts: PatientFacts;
}

/** Runs a write between `begin` and `end`; a write whose outcome is unknown stays begun. */
async function marked<T, B>(
  begin: () => Promise<B>,
  write: () => Promise<T>,
  end: (begun: B, result?: T) => void | Promise<void>,
): Promise<T> {
  const begun = await begin();
  let result: T;
  try {
    result = await write();
  } catch (err) {
    if (!isAmbiguousWrite(err)) await end(begun);
    throw err;
  }
  await end(begun, result);
  return result;
}

/** The Patients a transaction names by id, or 'all' when one of its Patient entries names none, or an
 * entry's URL does not say what it changes. */
function patientsOf(bundle: Bundle): string[] | 'all' {
  const ids = new Set<string>();
  for (const entry of bundle.entry ?? []) {
    const target = parseEntryUrl(entry.request?.url ?? '');
    if (target === undefined) return 'all';
    if (target.resourceType !== 'Patient') continue;
    // A create without an id makes a new Patient (new facts), or matches one and changes nothing.
    if (entry.request?.method === 'POST') continue;
    if (target.id === undefined) return 'all';
    ids.add(target.id);
  }
  return [...ids];
}

export function withPatientFacts(store: FhirStore, facts: PatientFacts): FactfulStore {
  const one = <T>(id: string, write: () => Promise<T>, units: (result: T) => string[] | undefined) =>
    marked(
      () => facts.begin([id]),
      write,
      (begun, result) => facts.end(begun, () => (result === undefined ? undefined : units(result))),
    );
  const all = <T>(write: () => Promise<T>, erased: string[] = []) =>
    marked(
      () => facts.beginAll(),
      write,
      () => facts.endAll(erased),
    );
  const isPatient = (resource: Resource | undefined) => resource?.resourceType === 'Patient';
  return {
    facts,
    get kind() {
      return store.kind;
    },
    read: (type, id) => store.read(type, id),
    vread: (type, id, versionId) => store.vread(type, id, versionId),
    search: (request) => store.search(request),
    ...(store.scan ? { scan: (request) => (store.scan as NonNullable<FhirStore['scan']>)(request) } : {}),
    ...(store.scanReferences
      ? {
          scanReferences: (request, param) =>
            (store.scanReferences as NonNullable<FhirStore['scanReferences']>)(request, param),
        }
      : {}),
    ...(store.now ? { now: () => (store.now as NonNullable<FhirStore['now']>)() } : {}),
    history: (type, id, options) => store.history(type, id, options),
    ping: () => store.ping(),
    create(resource, options) {
      const id = options?.id ?? resource.id;
      if (!isPatient(resource) || id === undefined) return store.create(resource, options);
      return one(
        id,
        () => store.create(resource, options),
        (r) => unitsOf(r.resource),
      );
    },
    update(resource, options) {
      if (!isPatient(resource)) return store.update(resource, options);
      return one(
        resource.id,
        () => store.update(resource, options),
        (r) => unitsOf(r.resource),
      );
    },
    conditionalUpdate(resource, query) {
      if (!isPatient(resource)) return store.conditionalUpdate(resource, query);
      return all(() => store.conditionalUpdate(resource, query));
    },
    delete(type: ResourceType, id: string) {
      if (type !== 'Patient') return store.delete(type, id);
      return one(
        id,
        () => store.delete(type, id),
        () => undefined,
      );
    },
    transaction(bundle) {
      const patients = patientsOf(bundle);
      if (patients === 'all') return all(() => store.transaction(bundle));
      if (patients.length === 0) return store.transaction(bundle);
      return marked(
        () => facts.begin(patients),
        () => store.transaction(bundle),
        (begun) => facts.end(begun, () => undefined),
      );
    },
    // Erasure also reaches whatever referred to the person: any Patient's facts may change.
    erasePatientCompartment: (patientId, options) =>
      all(() => store.erasePatientCompartment(patientId, options), [patientId]),
    eraseResource(type, id) {
      if (type !== 'Patient') return store.eraseResource(type, id);
      return all(() => store.eraseResource(type, id), [id]);
    },
    async patientUnits(patientId) {
      const known = facts.lookup(patientId);
      if ('units' in known) return known.units;
      let patient: Patient;
      try {
        patient = await store.read<Patient>('Patient', patientId);
      } catch (err) {
        if (isFhirError(err) && (err.status === 404 || err.status === 410)) return undefined;
        throw err;
      }
      const units = unitsOf(patient);
      if (known.ticket !== undefined) facts.learn(patientId, known.ticket, units);
      return units;
    },
    async close() {
      try {
        await store.close();
      } finally {
        await facts.close();
      }
    },
  };
}
