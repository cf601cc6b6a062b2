import type { Identifier, Patient, Resource } from '@medplum/fhirtypes';
import { personsConcerned } from '../consent/concerns';
import { dataDictionary } from '../dictionary';
import { PersonLocks, type PersonLockService } from '../consent/personLock';
import { loadFhirDefinitions } from '../fhir/definitions';
import { errors, FhirError, issue, operationOutcome } from '../fhir/outcomes';
import { identifierOfConditional, literalKey, parseReference } from '../fhir/reference';
import { planSearch } from '../fhir/search';
import {
  containsNationalId,
  extractNationalIds,
  invalidNationalId,
  type NationalId,
  nationalIdKindOf,
  parseNationalIdValue,
  sameSystem,
} from '../identity/nationalId';
import { PolicyEngine, type PolicyContext } from '../identity/policyEngine';
import { type Pseudonymiser, registryPseudonymSystem } from '../identity/pseudonym';
import {
  mergePseudonymousPatient,
  movePatientData,
  pseudonymIdentifier,
  readPatientIfStored,
} from '../identity/relink';
import { SearchTranslator } from '../identity/searchTranslation';
import {
  type IdentityVault,
  type LinkResult,
  type PlannedLink,
  SeveralPersonsError,
  type VaultPerson,
} from '../identity/vault/IdentityVault';
import { describeError, getLogger } from '../logging/logger';
import { isUnresolvedWrite } from '../store/ambiguousWrite';
import type { FhirStore } from '../store/FhirStore';
import type { WriteGuard } from './exclude';
import type { WriteIntent } from './journal';
import { notStoredIssues } from './notStored';
import { danglingReference } from './references';
import { entryLocation, type Write, type WriteEntry } from './write';

/**
 * The pseudonymise stage (DESIGN §2, §3.1), for every channel at once (single resource, conditional
 * create/update, batch entry, transaction all arrive as one Write).
 *
 * - A Patient becomes the pseudonymous Patient: its national ids are validated and linked in the
 *   identity vault, which gives the person a stable Patient id and the registry pseudonym; the entry
 *   becomes `PUT Patient/<vault id>`, so the same person sent by two clinics is one Patient, created once.
 *   What the store already knows about the person and the message lacks is kept (see
 *   `mergePseudonymousPatient`). A new id of one known person is linked to them; ids that belong to
 *   two registered persons are refused with 409 (DESIGN §4: only staff merge persons, Patient/$merge).
 *   A plain create (POST) of a person already held is therefore an update of their one Patient, and
 *   answers as one: 200, a new version, shown as an update in history (never a 201 for a Patient that
 *   was already there). A conditional create (If-None-Exist) that matches the person's Patient in the
 *   caller's view writes nothing and answers 200 with that Patient, as R4 says.
 * - A Patient as the registry returns it carries its registry pseudonym instead of a national id: an
 *   update of that Patient by its own id (the read-modify-write of an EPR) names the person by it. A
 *   registry pseudonym in a Patient write is accepted only as the written Patient's own.
 * - Every other resource is passed through the data dictionary (src/dictionary), an allow-list;
 *   references to a Patient — literal, urn:uuid, or logical by national id — point at the pseudonymous
 *   Patient.
 * - Conditional queries are rewritten the same way: business identifiers are hashed as the stored
 *   values were, national ids become the pseudonymous Patient.
 *
 * The identity changes a write makes share its fate. The stage wraps the later stages and persist: the
 * vault links are rehearsed (IdentityVault.rehearse) and made only once the write is persisted; a write
 * that is refused or fails later leaves no vault entry, alias or Patient behind.
 * Writes naming the same persons pass this stage one at a time (an in-process lock on their ids and
 * Patient ids), so what was rehearsed is what is committed.
 */
export interface PseudonymiseDeps {
  vault: IdentityVault;
  pseudonymiser: Pseudonymiser;
  store: FhirStore;
  /** Production refuses synthetic national ids. */
  production: boolean;
  /** The locks under which persons are linked; in this process only by default (one replica). */
  locks?: PersonLockService;
}

interface RunDeps extends PseudonymiseDeps {
  translator: SearchTranslator;
}

const engine = new PolicyEngine(dataDictionary);

export function createPseudonymiseStage(deps: PseudonymiseDeps): WriteGuard {
  loadFhirDefinitions();
  const run: RunDeps = { ...deps, translator: new SearchTranslator(deps) };
  const locks = deps.locks ?? new PersonLocks();
  return {
    async guard(write, ctx, proceed) {
      const release = await lockPersons(locks, deps.vault, write);
      try {
        const writeRun = new WriteRun(run, write);
        const pseudonymised = await writeRun.prepare(ctx.intent);
        let result;
        try {
          result = await proceed(pseudonymised, {
            ...ctx,
            patientIdInWrite: (nationalId) => writeRun.patientIdOf(nationalId),
            storedPatient: (patientId) => writeRun.storedPatient(patientId),
          });
        } catch (err) {
          // A write whose outcome is unknown keeps its Patients: recovery decides (src/ingest/recovery.ts).
          if (!isUnresolvedWrite(err)) await writeRun.abandon();
          throw err;
        }
        await writeRun.commit();
        return result;
      } finally {
        release();
      }
    },
  };
}

/**
 * Makes rehearsed links and moves the data of persons they find to be one to the survivor (except those
 * already moved). Committing links again changes nothing, so recovery (src/ingest/recovery.ts) may repeat it.
 */
export async function commitLinks(
  store: FhirStore,
  vault: IdentityVault,
  links: readonly PlannedLink[],
): Promise<void> {
  const results = links.length > 0 ? vault.commit(links) : [];
  for (const { person, merged } of results) {
    for (const retired of merged) {
      await movePatientData(store, retired.patientId, person.patientId);
    }
  }
}

/** Takes, exclusively, every id and Patient id the write names, widening while the vault changes them. */
async function lockPersons(
  locks: PersonLockService,
  vault: IdentityVault,
  write: Write,
): Promise<() => void> {
  const concerned = personsConcerned(write);
  const keysNow = (): Set<string> => {
    const keys = new Set<string>();
    const person = (p: VaultPerson | undefined) => p && keys.add(`patient:${p.patientId}`);
    for (const { value } of concerned.nationalIds) {
      // The vault's keyed hash, not the id: with STATE=postgres lock keys are visible to the database.
      keys.add(`id:${vault.idHash(value)}`);
      person(vault.find(value));
    }
    for (const { value } of concerned.patientIds) {
      keys.add(`patient:${value}`);
    }
    for (const { value } of concerned.pseudonyms) {
      person(vault.findByPseudonym(value));
    }
    return keys;
  };
  let keys = keysNow();
  if (keys.size === 0) {
    return () => undefined;
  }
  for (;;) {
    const release = await locks.acquire(keys, 'exclusive');
    const now = keysNow();
    if ([...now].every((key) => keys.has(key))) {
      return release;
    }
    release();
    keys = new Set([...keys, ...now]);
  }
}

class WriteRun {
  private readonly options: { production: boolean };
  /** Reference forms that denote a person in this write → "Patient/<vault id>". */
  private readonly patientRefs = new Map<string, string>();
  /** Persons only referenced by national id, new to the vault: they get a minimal Patient. */
  private readonly ensure = new Map<string, VaultPerson>();
  /** Patients this run created in the store ahead of persist; erased if the write fails. */
  private readonly created: string[] = [];
  private links: PlannedLink[] = [];
  /** National id (bare number) → Patient id, for every person this write links in the vault. */
  private readonly linkedIds = new Map<string, string>();
  /** Patient ids the vault gave persons new to it in this write: no stored Patient can have them. */
  private readonly newPatientIds = new Set<string>();
  /** Stored Patients read (or known absent: null) while holding the persons' lock. */
  private readonly stored = new Map<string, Patient | null>();
  /** Per entry: the elements the data dictionary did not keep (located path → reason). */
  private readonly notStored = new Map<number, Map<string, string>>();

  constructor(
    private readonly deps: RunDeps,
    private readonly write: Write,
  ) {
    this.options = { production: deps.production };
  }

  /** The pseudonymised write; the vault is unchanged until commit. The write's intent records the links
   * (sealed) and the Patients created ahead before any of them reaches the store. */
  async prepare(intent?: WriteIntent): Promise<Write> {
    const { result, links } = this.deps.vault.rehearse(() => this.pseudonymiseEntries());
    this.links = links;
    try {
      await intent?.planLinks(links.length > 0 ? this.deps.vault.sealLinks(links) : undefined, [
        ...this.ensure.keys(),
      ]);
      const entries = await Promise.all(result.map((entry) => this.withKnownPatient(entry)));
      for (const person of this.ensure.values()) {
        await this.ensurePatient(person);
      }
      return { ...this.write, entries };
    } catch (err) {
      await this.abandon();
      throw err;
    }
  }

  /** The Patient id this write gives the person with this national id, if the write names them. */
  patientIdOf(nationalId: string): string | undefined {
    return this.linkedIds.get(nationalId);
  }

  /** The stored Patient with this id as this run found it (null: none), or undefined if it did not look. */
  storedPatient(patientId: string): Patient | null | undefined {
    return this.stored.get(patientId);
  }

  /** After persist: link; should the vault have learnt of a person this run created, move its data there. */
  async commit(): Promise<void> {
    await commitLinks(this.deps.store, this.deps.vault, this.links);
  }

  /** The write failed: nothing of this run may stay; the vault never saw its links. */
  async abandon(): Promise<void> {
    for (const patientId of this.created.splice(0)) {
      try {
        await this.deps.store.eraseResource('Patient', patientId);
      } catch (err) {
        // The write's own error is what the client must see; the stray Patient carries a pseudonym only.
        getLogger().error('could not erase a Patient created for a failed write', {
          component: 'identity',
          ...describeError(err),
        });
      }
    }
  }

  private pseudonymiseEntries(): WriteEntry[] {
    const entries = this.write.entries.map((entry, index) =>
      entry.resourceType === 'Patient' ? this.patientEntry(entry, index) : entry,
    );
    return entries
      .map((entry, index) => (entry.resourceType === 'Patient' ? entry : this.otherEntry(entry, index)))
      .map((entry, index) => {
        const notStored = this.notStored.get(index);
        // Earlier stages may have reported already (a calculated answer replaced: questionnaire-stage.ts).
        return notStored
          ? { ...entry, notStored: [...(entry.notStored ?? []), ...notStoredIssues(notStored)] }
          : entry;
      });
  }

  /** A Patient update keeps what the store knows of the person; a conditional create that matches is void. */
  private async withKnownPatient(written: WriteEntry): Promise<WriteEntry> {
    let entry = written;
    if (entry.resourceType === 'Patient' && entry.method === 'POST' && entry.ifNoneExist && entry.id) {
      const match = this.newPatientIds.has(entry.id)
        ? undefined
        : await this.matchOf(entry.ifNoneExist, entry.id);
      if (match) {
        // R4: the POST is ignored. The store answers the existing Patient, matched by id, unchanged.
        return { ...entry, id: undefined, ifNoneExist: `_id=${match.id}`, resource: match };
      }
      entry = { ...entry, method: 'PUT', ifNoneExist: undefined };
    }
    if (entry.resourceType !== 'Patient' || entry.method !== 'PUT' || !entry.resource || !entry.id) {
      return entry;
    }
    // A person new to the vault got a fresh random Patient id just now: nothing to read (one round trip
    // to the store fewer for every first registration).
    const patient = this.newPatientIds.has(entry.id)
      ? undefined
      : await readPatientIfStored(this.deps.store, entry.id);
    this.stored.set(entry.id, patient ?? null);
    return patient
      ? { ...entry, resource: mergePseudonymousPatient([patient], entry.resource as Patient) }
      : entry;
  }

  /**
   * The person's own Patient, if the (translated) If-None-Exist query matches it. The query is held to
   * that one Patient: the body names the person, so matching anyone else's Patient must not stand in for
   * writing theirs.
   */
  private async matchOf(query: string, patientId: string): Promise<Patient | undefined> {
    const params = new URLSearchParams(query);
    params.append('_id', patientId);
    const { matches } = await this.deps.store.search(planSearch('Patient', params).request);
    return matches[0] as Patient | undefined;
  }

  private prefix(index: number): string {
    const location = entryLocation(this.write, index);
    return location === undefined ? '' : `${location}.resource`;
  }

  private expression(index: number, resourceType: string, path: string): string {
    return entryLocation(this.write, index) ? `${this.prefix(index)}.${path}` : `${resourceType}.${path}`;
  }

  // ---- Patient entries ----

  private patientEntry(entry: WriteEntry, index: number): WriteEntry {
    if (entry.method === 'DELETE') {
      return this.patientDelete(entry, index);
    }
    const resource = entry.resource as Patient | undefined;
    if (!resource) {
      return entry;
    }
    const found = extractNationalIds(
      resource.identifier,
      this.expression(index, 'Patient', 'identifier'),
      this.options,
    ).map((f) => f.id);
    found.push(...this.nationalIdsInQuery(entry.conditionalQuery ?? entry.ifNoneExist, index));
    const link: LinkResult =
      found.length > 0
        ? this.linkLater(found, this.expression(index, 'Patient', 'identifier'))
        : { person: this.updatedByPseudonym(entry, resource, index), created: false, merged: [] };
    if (link.created) {
      this.newPatientIds.add(link.person.patientId);
    }
    this.requireOwnPseudonyms(resource, link.person, index);
    const target = `Patient/${link.person.patientId}`;
    if (entry.fullUrl) {
      this.patientRefs.set(entry.fullUrl, target);
    }
    for (const id of [entry.id, resource.id]) {
      if (id) {
        this.patientRefs.set(`Patient/${id}`, target);
      }
    }
    const pseudonymous = engine.apply(
      { ...resource, id: link.person.patientId },
      this.context([pseudonymIdentifier(link.person.pseudonym)], index),
    );
    return {
      // A conditional create stays one until it is known whether it matches (withKnownPatient).
      method: entry.method === 'POST' && entry.ifNoneExist !== undefined ? 'POST' : 'PUT',
      resourceType: 'Patient',
      id: link.person.patientId,
      ifNoneExist:
        entry.method === 'POST' && entry.ifNoneExist !== undefined
          ? this.rewriteQuery('Patient', entry.ifNoneExist, index)
          : undefined,
      // Optimistic locking still works for a client updating the pseudonymous Patient by its own id.
      ifMatch: entry.method === 'PUT' && entry.id === link.person.patientId ? entry.ifMatch : undefined,
      // Set explicitly: the national id may have come only from the conditional query.
      resource: { ...pseudonymous, identifier: [pseudonymIdentifier(link.person.pseudonym)] },
      fullUrl: entry.fullUrl,
      ...(found.length === 0 ? { byPseudonym: true } : {}),
    };
  }

  /**
   * A Patient without a national id names its person only as the registry returned it: an update of
   * that Patient by its own id, carrying its own registry pseudonym. Anything else is refused with one
   * text, whether the pseudonym is made up or another person's (a reserved person's Patient was refused
   * earlier, by the exclusion stage, and has left the vault anyway).
   */
  private updatedByPseudonym(entry: WriteEntry, resource: Patient, index: number): VaultPerson {
    const own = entry.method === 'PUT' && entry.id ? this.deps.vault.findByPatientId(entry.id) : undefined;
    if (own && pseudonymsOf(resource).some(({ value }) => value === own.pseudonym)) {
      return own;
    }
    throw personNotNamed(this.expression(index, 'Patient', 'identifier'));
  }

  /** A registry pseudonym in a Patient names that Patient's person; another's (or none's) is refused. */
  private requireOwnPseudonyms(resource: Patient, person: VaultPerson, index: number): void {
    for (const { value, position } of pseudonymsOf(resource)) {
      if (value !== person.pseudonym) {
        throw errors.unprocessable([
          issue(
            'value',
            "This registry pseudonym is not the written Patient's own. Send the Patient's national id, or the pseudonym only back to the Patient it was read from.",
            this.expression(index, 'Patient', `identifier[${position}]`),
          ),
        ]);
      }
    }
  }

  private patientDelete(entry: WriteEntry, index: number): WriteEntry {
    if (entry.conditionalQuery === undefined) {
      return entry;
    }
    const ids = this.nationalIdsInQuery(entry.conditionalQuery, index);
    if (ids.length === 0) {
      return { ...entry, conditionalQuery: this.rewriteQuery('Patient', entry.conditionalQuery, index) };
    }
    const person = ids.map((id) => this.deps.vault.find(id)).find((p) => p !== undefined);
    // An unknown person matches nothing: a pseudonym nobody has keeps the delete a no-op.
    const pseudonym = person?.pseudonym ?? this.deps.pseudonymiser.pseudonym(`unknown|${ids[0].value}`);
    return { ...entry, conditionalQuery: `identifier=${registryPseudonymSystem}|${pseudonym}` };
  }

  /** National ids in a Patient conditional query (identifier=system|value), validated. */
  private nationalIdsInQuery(query: string | undefined, index: number): NationalId[] {
    if (!query) {
      return [];
    }
    const ids: NationalId[] = [];
    for (const [name, value] of new URLSearchParams(query)) {
      if (name !== 'identifier') {
        continue;
      }
      for (const token of value.split(',')) {
        const bar = token.indexOf('|');
        if (bar < 0) {
          continue;
        }
        const identifier: Identifier = { system: token.slice(0, bar), value: token.slice(bar + 1) };
        const kind = nationalIdKindOf(identifier);
        if (kind === 'fnr' || kind === 'dnr' || kind === 'fhn') {
          const parsed = parseNationalIdValue(kind, identifier.value as string, this.options);
          if (!parsed.ok) {
            throw invalidNationalId(
              kind,
              parsed.problem,
              entryLocation(this.write, index) ? `Bundle.entry[${index}].request.url` : 'identifier',
            );
          }
          ids.push(parsed.id);
        }
      }
    }
    return ids;
  }

  // ---- all other entries ----

  private otherEntry(entry: WriteEntry, index: number): WriteEntry {
    this.refuseNationalIdInId(entry.id, index);
    const out: WriteEntry = { ...entry };
    if (entry.resource) {
      this.refuseNationalIdInId(entry.resource.id, index);
      out.resource = engine.apply(entry.resource, this.context(undefined, index)) as Resource;
    }
    if (entry.ifNoneExist !== undefined) {
      out.ifNoneExist = this.rewriteQuery(entry.resourceType, entry.ifNoneExist, index);
    }
    if (entry.conditionalQuery !== undefined) {
      out.conditionalQuery = this.rewriteQuery(entry.resourceType, entry.conditionalQuery, index);
    }
    return out;
  }

  /** A client-chosen logical id is stored as is, so it must not be (or contain) a national id. */
  private refuseNationalIdInId(id: string | undefined, index: number): void {
    if (id !== undefined && containsNationalId(id)) {
      throw errors.unprocessable([
        issue(
          'value',
          'A resource id must not contain a national id; let the server assign the id or use another one.',
          entryLocation(this.write, index) ? `Bundle.entry[${index}].resource.id` : 'id',
        ),
      ]);
    }
  }

  /**
   * Rewrites a conditional query so it matches what was stored (src/identity/searchTranslation.ts, shared
   * with searches): identifier values hashed under every key version, national ids turned into the
   * pseudonymous Patient. A person referenced by national id in this write was linked above, so it is found.
   */
  private rewriteQuery(resourceType: string, query: string, index: number): string {
    const expression = entryLocation(this.write, index) ? `Bundle.entry[${index}].request` : 'query';
    return this.deps.translator.query(resourceType, query, expression);
  }

  // ---- references ----

  private context(patientIdentifiers: Identifier[] | undefined, index: number): PolicyContext {
    // The engine names elements by path ("Encounter.subject.reference"); in a Bundle, name the entry.
    const locate = (path: string) =>
      entryLocation(this.write, index) ? `${this.prefix(index)}${path.slice(path.indexOf('.'))}` : path;
    return {
      patientIdentifiers,
      expression: locate,
      notStored: (path, reason) => {
        let found = this.notStored.get(index);
        if (!found) {
          found = new Map();
          this.notStored.set(index, found);
        }
        found.set(locate(path), reason);
      },
      rewritePatientReference: (reference, expression) =>
        this.rewritePatientReference(reference, locate(expression)),
      referenceForNationalId: (identifier, expression) =>
        this.referenceForNationalId(identifier, locate(expression)),
      hashIdentifier: (system, value) => this.deps.pseudonymiser.hashIdentifier(system, value),
    };
  }

  /** `reference` is canonical: the door (src/ingest/references.ts) parsed every reference the client sent. */
  private rewritePatientReference(reference: string, expression: string): string | undefined {
    const parsed = parseReference(reference);
    if (!parsed.ok) {
      return undefined;
    }
    const target = parsed.reference;
    if (target.kind === 'placeholder') {
      return this.patientRefs.get(reference);
    }
    if (target.kind === 'literal' && target.resourceType === 'Patient') {
      const mapped = this.patientRefs.get(literalKey(target));
      if (mapped || this.deps.vault.findByPatientId(target.id)) {
        return mapped;
      }
      // An EPR's own patient id would be a dangling reference and an identifier of the EPR record.
      throw danglingReference(expression);
    }
    const identifier =
      target.kind === 'conditional' && target.resourceType === 'Patient' && identifierOfConditional(target);
    if (!identifier) {
      return undefined;
    }
    if (sameSystem(identifier.system, registryPseudonymSystem)) {
      const person = this.deps.vault.findByPseudonym(identifier.value);
      return person ? `Patient/${person.patientId}` : undefined;
    }
    return nationalIdKindOf(identifier) ? this.referenceForNationalId(identifier, expression) : undefined;
  }

  /**
   * Links the ids to one person in the rehearsing vault, remembering whom each id now names. Ids of two
   * registered persons are refused (409) with one text whoever the other person is: it names no person,
   * Patient id or unit, only where in the request the ids stand.
   */
  private linkLater(ids: NationalId[], expression: string): LinkResult {
    let link: LinkResult;
    try {
      link = this.deps.vault.link(ids);
    } catch (err) {
      if (err instanceof SeveralPersonsError) {
        throw severalPersons(expression);
      }
      throw err;
    }
    for (const id of ids) {
      this.linkedIds.set(id.value, link.person.patientId);
    }
    return link;
  }

  /** A person named by a national id only: validated, found or created in the vault. */
  private referenceForNationalId(identifier: Identifier, expression: string): string {
    const [found] = extractNationalIds([identifier], expression, this.options);
    const id = found.id;
    const known = this.deps.vault.find(id);
    if (known) {
      return `Patient/${known.patientId}`;
    }
    const link = this.linkLater([id], expression);
    this.ensure.set(link.person.patientId, link.person);
    return `Patient/${link.person.patientId}`;
  }

  /** A person first met as a reference gets a minimal pseudonymous Patient, so the reference resolves. */
  private async ensurePatient(person: VaultPerson): Promise<void> {
    const { created } = await this.deps.store.update({
      resourceType: 'Patient',
      id: person.patientId,
      identifier: [pseudonymIdentifier(person.pseudonym)],
    });
    if (created) {
      this.created.push(person.patientId);
    }
  }
}

/** A Patient write that names no person: one answer, whatever pseudonym it carried and whoever holds it. */
export function personNotNamed(expression: string): FhirError {
  return errors.unprocessable([
    issue(
      'required',
      'A Patient sent to the registry must carry a national id: fødselsnummer, D-number, felles hjelpenummer, or a local H-number with its assigner. A Patient read from the registry may instead be written back to its own id (PUT Patient/<id>) with the registry pseudonym it was read with.',
      expression,
    ),
  ]);
}

/** The registry pseudonym identifiers a Patient carries, with their position in `identifier`. */
function pseudonymsOf(resource: Patient): { value: string | undefined; position: number }[] {
  return (resource.identifier ?? []).flatMap((identifier, position) =>
    sameSystem(identifier.system, registryPseudonymSystem) ? [{ value: identifier.value, position }] : [],
  );
}

function severalPersons(expression: string): FhirError {
  return new FhirError(
    409,
    operationOutcome([
      issue(
        'conflict',
        'The national ids in this write belong to more than one person registered in NorPain, so the registry cannot tell whom it is about; nothing was stored. Send the ids of one person only. If the ids are in fact one person, ask the registry to merge the persons (Patient/$merge).',
        expression,
      ),
    ]),
  );
}
