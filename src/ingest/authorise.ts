import { randomUUID } from 'node:crypto';
import type { EpisodeOfCare, Encounter, Reference, Resource } from '@medplum/fhirtypes';
import { decide, type Reach } from '../auth/matrix';
import type { Principal } from '../auth/principal';
import type { Permission } from '../auth/scopes';
import { unitsOf, withoutUnitLabels, withUnitLabels } from '../auth/unitLabel';
import { createView, type View, type ViewDeps } from '../auth/view';
import { errors, isFhirError } from '../fhir/outcomes';
import { identifierOfConditional, literalKey, parseReference } from '../fhir/reference';
import { planSearch } from '../fhir/search';
import type { FhirStore } from '../store/FhirStore';
import type { StoredPatients } from '../store/patientFacts';
import { RESH_SYSTEM } from '../units/units';
import { personNotNamed } from './pseudonymise';
import { entryLocation, type IngestContext, type IngestStage, type Write, type WriteEntry } from './write';
import { sameSystem } from '../identity/nationalId';

/**
 * Authorisation of writes, in two stages of the ingest pipeline:
 *
 * 1. `authoriseWrite`, first of all: may this role and these scopes create/update/delete this type at
 *    all (src/auth/matrix.ts)? Unit labels a client sent are dropped (only the server sets them), and a
 *    clinic may not write an episode or encounter on behalf of another unit. `createRespondentStage`,
 *    once conditional references are resolved: who gave a portal response.
 * 2. `createWriteOwnershipStage`, right after pseudonymisation (when every Patient reference and id is
 *    final): whose data the write touches. A clinic updates or deletes only resources labelled with its
 *    unit (a Patient is shared: each unit that sends the person is added to its label); the portal writes
 *    only resources about its own person; conditional creates and updates only match within the writer's
 *    view. Then every written resource gets its unit label (src/auth/unitLabel.ts).
 */

const PERMISSION: Record<WriteEntry['method'], Permission> = { POST: 'c', PUT: 'u', DELETE: 'd' };

function where(write: Write, index: number): string {
  return entryLocation(write, index) ?? '';
}

function forbidden(write: Write, index: number, text: string) {
  const at = where(write, index);
  return errors.forbidden(at === '' ? text : `${at}: ${text}`);
}

export const authoriseWrite: IngestStage = (write, ctx) => {
  const { principal } = ctx;
  const entries = write.entries.map((entry, index) => {
    const decision = decide(principal, entry.resourceType, PERMISSION[entry.method]);
    if (!decision.allowed) {
      throw forbidden(write, index, decision.reason);
    }
    if (entry.resource === undefined) {
      return entry;
    }
    const resource = withoutUnitLabels(entry.resource);
    if (principal.role === 'clinic') {
      const unit = statedUnit(resource);
      if (unit !== undefined && unit !== principal.organization) {
        throw forbidden(
          write,
          index,
          `A clinic token writes for its own unit only; this ${resource.resourceType} names another unit (RESH).`,
        );
      }
    }
    if (principal.role === 'portal' && namesAnotherPerson(resource, principal.pid, ctx.base)) {
      // Refused here, before pseudonymisation could register the other person.
      throw forbidden(write, index, 'A portal token may write only about the person it acts for.');
    }
    if (principal.role === 'portal' && respondentNotThePerson(resource, principal.pid, ctx.base)) {
      throw forbidden(write, index, RESPONDENT_REFUSAL);
    }
    return resource === entry.resource ? entry : { ...entry, resource };
  });
  return { ...write, entries };
};

/** Whether the resource's subject names, by national id, someone other than the token's person. This
 * stage runs before the door (src/ingest/references.ts) canonicalises references, so it parses with the
 * same parser and base; a reference the door will refuse names nobody here. */
function namesAnotherPerson(resource: Resource, pid: string | undefined, base: string): boolean {
  const subject = (resource as { subject?: Reference }).subject;
  return subject !== undefined && byNationalId(subject, pid, base) === 'other';
}

/**
 * Who gave a portal response (QuestionnaireResponse.author and .source) can only be the person the token
 * acts for, or be left out (DESIGN §5): the portal speaks for that one citizen, so a response it sends in
 * someone else's name — another patient, a practitioner, a relative — is not its to make. 403, like a
 * subject naming someone else, and before pseudonymisation, so that the other person is never registered.
 * A literal Patient reference is checked once conditional references are resolved (`createRespondentStage`).
 */
const RESPONDENT_ELEMENTS = ['author', 'source'] as const;
const RESPONDENT_REFUSAL =
  'A portal response can only be given by the person the token acts for: QuestionnaireResponse.author and .source must name that person or be left out.';

function respondentNotThePerson(resource: Resource, pid: string | undefined, base: string): boolean {
  if (resource.resourceType !== 'QuestionnaireResponse') return false;
  return RESPONDENT_ELEMENTS.some((element) => {
    const reference = (resource as Partial<Record<(typeof RESPONDENT_ELEMENTS)[number], Reference>>)[element];
    if (reference === undefined) return false;
    const named = byNationalId(reference, pid, base);
    if (named !== undefined) return named === 'other';
    const parsed = parseReference(reference.reference ?? '', { ownBases: [base] });
    // Only a Patient can be the person; its id is compared once it is final.
    return !parsed.ok || parsed.reference.kind !== 'literal' || parsed.reference.resourceType !== 'Patient';
  });
}

/** A literal author or source of a portal response that is not the person's own Patient. One named by
 * identifier only was decided by `authoriseWrite`. */
function respondentOtherThan(resource: Resource, patientId: string | undefined): boolean {
  if (resource.resourceType !== 'QuestionnaireResponse') return false;
  const own = patientId === undefined ? undefined : literalKey({ resourceType: 'Patient', id: patientId });
  return RESPONDENT_ELEMENTS.some((element) => {
    const reference = (resource as Partial<Record<(typeof RESPONDENT_ELEMENTS)[number], Reference>>)[element];
    if (reference?.reference === undefined) return false;
    const parsed = parseReference(reference.reference);
    return !parsed.ok || parsed.reference.kind !== 'literal' || literalKey(parsed.reference) !== own;
  });
}

/**
 * The literal author or source of a portal response, once conditional references are resolved: it must
 * be the person's own Patient. Before the references must name a resource the caller sees (another
 * person's Patient reads as one that does not exist, 422) and before pseudonymisation, which does not
 * store author or source (src/dictionary): so the portal is told the rule it broke, the same 403 whether
 * the Patient it named exists or not. A person with no Patient yet can name none.
 */
export function createRespondentStage(deps: ViewDeps): IngestStage {
  return (write, ctx) => {
    if (ctx.principal.role !== 'portal') return write;
    const own = deps.personOf(ctx.principal);
    for (const [index, entry] of write.entries.entries()) {
      if (entry.resource !== undefined && respondentOtherThan(entry.resource, own)) {
        throw forbidden(write, index, RESPONDENT_REFUSAL);
      }
    }
    return write;
  };
}

/**
 * Whether a reference names the token's person by national id ('self'), someone else ('other'), or names
 * nobody by national id (undefined): by `identifier`, or as a conditional `Patient?identifier=…`.
 */
function byNationalId(
  reference: Reference,
  pid: string | undefined,
  base: string,
): 'self' | 'other' | undefined {
  const same = (value: string): 'self' | 'other' => (value.replace(/\s+/g, '') === pid ? 'self' : 'other');
  const byIdentifier = reference.identifier?.value;
  if (byIdentifier !== undefined) return same(byIdentifier);
  const parsed =
    reference.reference === undefined ? undefined : parseReference(reference.reference, { ownBases: [base] });
  const target = parsed?.ok ? parsed.reference : undefined;
  if (target?.kind === 'conditional' && target.resourceType === 'Patient') {
    const value = identifierOfConditional(target)?.value;
    return value === undefined ? 'other' : same(value);
  }
  return undefined;
}

/** The unit (RESH) an episode or encounter says it belongs to, when it names one by identifier. */
function statedUnit(resource: Resource): string | undefined {
  let organization: Reference | undefined;
  if (resource.resourceType === 'EpisodeOfCare') {
    organization = (resource as EpisodeOfCare).managingOrganization;
  } else if (resource.resourceType === 'Encounter') {
    organization = (resource as Encounter).serviceProvider;
  }
  const identifier = organization?.identifier;
  return sameSystem(identifier?.system, RESH_SYSTEM) ? identifier?.value : undefined;
}

export interface OwnershipDeps extends ViewDeps {
  store: FhirStore;
  /** A Patient's units without a store round trip when the façade knows them (src/store/patientFacts.ts). */
  patients: StoredPatients;
}

export function createWriteOwnershipStage(deps: OwnershipDeps): IngestStage {
  return async (write, ctx) => {
    // A person's first write (say the portal's first answer) names someone the vault learns of only
    // after persist: the pseudonymise stage tells who that is.
    const personOf = (principal: Principal): string | undefined =>
      deps.personOf(principal) ??
      (principal.pid === undefined ? undefined : ctx.patientIdInWrite?.(principal.pid));
    const ownDeps: OwnershipDeps = { ...deps, personOf };
    const view = createView(ctx.principal, ownDeps);
    const entries: WriteEntry[] = [];
    for (const [index, entry] of write.entries.entries()) {
      entries.push(await ownEntry(ownDeps, view, ctx, write, index, entry));
    }
    return { ...write, entries };
  };
}

async function ownEntry(
  deps: OwnershipDeps,
  view: View,
  ctx: IngestContext,
  write: Write,
  index: number,
  entry: WriteEntry,
): Promise<WriteEntry> {
  const { principal } = ctx;
  const decision = decide(principal, entry.resourceType, PERMISSION[entry.method]);
  if (!decision.allowed) {
    throw forbidden(write, index, decision.reason);
  }
  const reach: Reach = decision.reach;
  const result: WriteEntry = { ...entry };
  // Conditional writes match only within the writer's view, so they never touch others' data.
  const filter = reach === 'all' ? undefined : view.conditionalFilter(entry.resourceType);
  if (filter !== undefined) {
    if (entry.ifNoneExist !== undefined) result.ifNoneExist = `${entry.ifNoneExist}&${filter}`;
    if (entry.conditionalQuery !== undefined) result.conditionalQuery = `${entry.conditionalQuery}&${filter}`;
  }
  const existing = await currentTarget(deps.store, ctx, entry, reach === 'all' ? undefined : filter);
  if (entry.byPseudonym && existing !== undefined && !view.inReach(existing, reach)) {
    // A Patient outside the view does not exist to this writer: answered as a made-up pseudonym is, so a
    // Patient id and pseudonym learnt elsewhere neither reveal the person nor attach another unit to them.
    const at = entryLocation(write, index);
    throw personNotNamed(at === undefined ? 'Patient.identifier' : `${at}.resource.identifier`);
  }
  const shared = entry.resourceType === 'Patient' && reach === 'own-unit';
  if (existing !== undefined && !shared && !view.inReach(existing, reach)) {
    throw forbidden(
      write,
      index,
      `This ${entry.resourceType} belongs to another unit or person; it cannot be changed with this token.`,
    );
  }
  if (entry.method === 'DELETE') {
    if (shared && existing !== undefined && !view.inReach(existing, reach)) {
      // A Patient outside the view is, to this clinic, one that does not exist: deleting it changes
      // nothing and answers as deleting a missing id does (DESIGN §3.6), never "registered elsewhere".
      return { ...result, id: randomUUID() };
    }
    if (
      shared &&
      existing !== undefined &&
      unitsOf(existing).some((unit) => unit !== principal.organization)
    ) {
      throw forbidden(
        write,
        index,
        'This person is also registered by another unit; only registry staff can delete the Patient.',
      );
    }
    return result;
  }
  if (entry.resource === undefined) {
    return result;
  }
  const units = new Set(unitsOf(existing));
  if (reach === 'own-unit' && principal.organization !== undefined) {
    units.add(principal.organization);
  } else if (reach === 'own-person') {
    // The portal's answers belong to the units that treat the person (those that sent their Patient).
    for (const unit of await personUnits(deps, principal)) units.add(unit);
  } else if (existing === undefined) {
    const stated = statedUnit(entry.resource);
    if (stated !== undefined) units.add(stated);
  }
  result.resource = withUnitLabels(entry.resource, units);
  if (!view.inReach(result.resource, reach)) {
    throw forbidden(
      write,
      index,
      reach === 'own-person'
        ? `A portal token may write only about the person it acts for; this ${entry.resourceType} is about someone else.`
        : `This ${entry.resourceType} would not belong to the unit this token acts for.`,
    );
  }
  return result;
}

/** The stored resource a PUT or DELETE replaces (by id, or the single match of a conditional update). */
async function currentTarget(
  store: FhirStore,
  ctx: IngestContext,
  entry: WriteEntry,
  filter: string | undefined,
): Promise<Resource | undefined> {
  if (entry.method !== 'POST' && entry.id !== undefined) {
    // The pseudonymise stage read (or knows there is no) stored Patient under the same person lock.
    const known = entry.resourceType === 'Patient' ? ctx.storedPatient?.(entry.id) : undefined;
    if (known !== undefined) return known ?? undefined;
    try {
      return await store.read(entry.resourceType, entry.id);
    } catch (err) {
      if (isFhirError(err) && (err.status === 404 || err.status === 410)) return undefined;
      throw err;
    }
  }
  if (
    entry.method === 'PUT' &&
    entry.conditionalQuery !== undefined &&
    !entry.conditionalQuery.includes('urn:')
  ) {
    const query = filter === undefined ? entry.conditionalQuery : `${entry.conditionalQuery}&${filter}`;
    const params = new URLSearchParams(query);
    params.set('_count', '2');
    const { matches } = await store.search(planSearch(entry.resourceType, params).request);
    return matches.length === 1 ? matches[0] : undefined;
  }
  return undefined;
}

async function personUnits(deps: OwnershipDeps, principal: Principal): Promise<string[]> {
  const id = deps.personOf(principal);
  return id === undefined ? [] : ((await deps.patients.patientUnits(id)) ?? []);
}
