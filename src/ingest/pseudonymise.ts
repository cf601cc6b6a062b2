import type { Identifier, Patient, Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../fhir/definitions';
import { errors, issue } from '../fhir/outcomes';
import {
  extractNationalIds,
  invalidNationalId,
  type NationalId,
  nationalIdKindOf,
  parseNationalIdValue,
} from '../identity/nationalId';
import { PolicyEngine, type PolicyContext, redactNationalIds } from '../identity/policyEngine';
import { type Pseudonymiser, registryPseudonymSystem } from '../identity/pseudonym';
import { movePatientData, pseudonymIdentifier } from '../identity/relink';
import { SearchTranslator } from '../identity/searchTranslation';
import type { IdentityVault, VaultPerson } from '../identity/vault/IdentityVault';
import type { FhirStore } from '../store/FhirStore';
import { pseudonymisationPolicy } from './pseudonymisation-policy';
import type { IngestStage, Write, WriteEntry } from './write';

/**
 * The pseudonymise stage (DESIGN §2, §3.1): the last stage before persist, for every channel at once
 * (single resource, conditional create/update, batch entry, transaction all arrive as one Write).
 *
 * - A Patient becomes the pseudonymous Patient: its national ids are validated and linked in the
 *   identity vault, which gives the person a stable Patient id and the registry pseudonym; the entry
 *   becomes `PUT Patient/<vault id>`, so the same person sent by two clinics is one Patient, created once.
 * - Every other resource is passed through the policy (src/ingest/pseudonymisation-policy.ts);
 *   references to a Patient — literal, urn:uuid, or logical by national id — point at the pseudonymous
 *   Patient.
 * - Conditional queries are rewritten the same way: business identifiers are hashed as the stored
 *   values were, national ids become the pseudonymous Patient.
 * - When a Patient's ids link persons the vault knew apart, their data are moved to the survivor.
 */
export interface PseudonymiseDeps {
  vault: IdentityVault;
  pseudonymiser: Pseudonymiser;
  store: FhirStore;
  /** Production refuses synthetic national ids. */
  production: boolean;
}

const engine = new PolicyEngine(pseudonymisationPolicy);

export function createPseudonymiseStage(deps: PseudonymiseDeps): IngestStage {
  loadFhirDefinitions();
  const run = { ...deps, translator: new SearchTranslator(deps) };
  return async (write) => new WriteRun(run, write).run();
}

class WriteRun {
  private readonly options: { production: boolean };
  /** Reference forms that denote a person in this write → "Patient/<vault id>". */
  private readonly patientRefs = new Map<string, string>();
  /** Patients created in the store by this run for persons only referenced by national id. */
  private readonly ensure = new Map<string, VaultPerson>();
  private readonly merges: { from: VaultPerson; to: VaultPerson }[] = [];
  private readonly multi: boolean;

  constructor(
    private readonly deps: PseudonymiseDeps & { translator: SearchTranslator },
    private readonly write: Write,
  ) {
    this.options = { production: deps.production };
    this.multi = write.entries.length > 1;
  }

  async run(): Promise<Write> {
    const entries = this.write.entries.map((entry, index) =>
      entry.resourceType === 'Patient' ? this.patientEntry(entry, index) : entry,
    );
    for (const { from, to } of this.merges) {
      await movePatientData(this.deps.store, from.patientId, to.patientId);
    }
    const out: WriteEntry[] = entries.map((entry, index) =>
      entry.resourceType === 'Patient' ? entry : this.otherEntry(entry, index),
    );
    for (const person of this.ensure.values()) {
      await this.ensurePatient(person);
    }
    return { ...this.write, entries: out };
  }

  private prefix(index: number): string {
    return this.multi ? `Bundle.entry[${index}].resource` : '';
  }

  private expression(index: number, resourceType: string, path: string): string {
    return this.multi ? `${this.prefix(index)}.${path}` : `${resourceType}.${path}`;
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
    if (found.length === 0) {
      throw errors.unprocessable([
        issue(
          'required',
          'A Patient sent to the registry must carry a national id: fødselsnummer, D-number, felles hjelpenummer, or a local H-number with its assigner.',
          this.expression(index, 'Patient', 'identifier'),
        ),
      ]);
    }
    const link = this.deps.vault.link(found);
    const target = `Patient/${link.person.patientId}`;
    for (const merged of link.merged) {
      this.merges.push({ from: merged, to: link.person });
      this.patientRefs.set(`Patient/${merged.patientId}`, target);
    }
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
      method: 'PUT',
      resourceType: 'Patient',
      id: link.person.patientId,
      // Optimistic locking still works for a client updating the pseudonymous Patient by its own id.
      ifMatch: entry.method === 'PUT' && entry.id === link.person.patientId ? entry.ifMatch : undefined,
      // Set explicitly: the national id may have come only from the conditional query.
      resource: { ...pseudonymous, identifier: [pseudonymIdentifier(link.person.pseudonym)] },
      fullUrl: entry.fullUrl,
    };
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
              this.multi ? `Bundle.entry[${index}].request.url` : 'identifier',
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
    if (id !== undefined && redactNationalIds(id) !== id) {
      throw errors.unprocessable([
        issue(
          'value',
          'A resource id must not contain a national id; let the server assign the id or use another one.',
          this.multi ? `Bundle.entry[${index}].resource.id` : 'id',
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
    const expression = this.multi ? `Bundle.entry[${index}].request` : 'query';
    return this.deps.translator.query(resourceType, query, expression);
  }

  // ---- references ----

  private context(patientIdentifiers: Identifier[] | undefined, index: number): PolicyContext {
    // The engine names elements by path ("Encounter.subject.reference"); in a Bundle, name the entry.
    const locate = (path: string) =>
      this.multi ? `${this.prefix(index)}${path.slice(path.indexOf('.'))}` : path;
    return {
      patientIdentifiers,
      rewritePatientReference: (reference, expression) =>
        this.rewritePatientReference(reference, locate(expression)),
      referenceForNationalId: (identifier, expression) =>
        this.referenceForNationalId(identifier, locate(expression)),
      hashIdentifier: (system, value) => this.deps.pseudonymiser.hashIdentifier(system, value),
    };
  }

  private rewritePatientReference(reference: string, expression: string): string | undefined {
    const direct = this.patientRefs.get(reference);
    if (direct) {
      return direct;
    }
    const literal = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference);
    if (literal) {
      const mapped = this.patientRefs.get(`Patient/${literal[1]}`);
      if (mapped || this.deps.vault.findByPatientId(literal[1])) {
        return mapped;
      }
      // An EPR's own patient id would be a dangling reference and an identifier of the EPR record.
      throw errors.unprocessable([
        issue(
          'not-found',
          'The referenced Patient is not a Patient of the registry. Reference the Patient id the server returned, a Patient in the same transaction, or the person by national id (Reference.identifier).',
          expression,
        ),
      ]);
    }
    const conditional = /^Patient\?identifier=([^|&]*)\|([^&]+)$/.exec(reference);
    if (conditional) {
      const identifier: Identifier = {
        system: decodeURIComponent(conditional[1]),
        value: decodeURIComponent(conditional[2]),
      };
      if (identifier.system === registryPseudonymSystem) {
        const person = this.deps.vault.findByPseudonym(identifier.value as string);
        return person ? `Patient/${person.patientId}` : undefined;
      }
      if (nationalIdKindOf(identifier)) {
        return this.referenceForNationalId(identifier, expression);
      }
    }
    return undefined;
  }

  /** A person named by a national id only: validated, found or created in the vault. */
  private referenceForNationalId(identifier: Identifier, expression: string): string {
    const [found] = extractNationalIds([identifier], expression, this.options);
    const id = found.id;
    const known = this.deps.vault.find(id);
    if (known) {
      return `Patient/${known.patientId}`;
    }
    const link = this.deps.vault.link([id]);
    this.ensure.set(link.person.patientId, link.person);
    return `Patient/${link.person.patientId}`;
  }

  /** A person first met as a reference gets a minimal pseudonymous Patient, so the reference resolves. */
  private async ensurePatient(person: VaultPerson): Promise<void> {
    await this.deps.store.update({
      resourceType: 'Patient',
      id: person.patientId,
      identifier: [pseudonymIdentifier(person.pseudonym)],
    });
  }
}
