import { getSearchParameters } from '@medplum/core';
import type { OperationOutcomeIssue, Resource, ResourceType } from '@medplum/fhirtypes';
import { roleReach } from '../auth/matrix';
import { createView, type View, type ViewDeps } from '../auth/view';
import { errors, FhirError, isFhirError, issue } from '../fhir/outcomes';
import {
  formatReference,
  identifierOfConditional,
  literalKey,
  parseReference,
  type ParsedReference,
  referenceSites,
} from '../fhir/reference';
import { planSearch } from '../fhir/search';
import { isNationalIdSystem } from '../identity/nationalId';
import type { SearchTranslator } from '../identity/searchTranslation';
import type { FhirStore } from '../store/FhirStore';
import type { StoredPatients } from '../store/patientFacts';
import { withUnitLabels } from '../auth/unitLabel';
import { entryLocation, type IngestContext, type IngestStage, type Write, type WriteEntry } from './write';

/**
 * References at the door (DESIGN §3.1): every Reference a write carries, wherever it stands (any element,
 * extensions, contained resources), and every reference a conditional query names, is parsed once by
 * src/fhir/reference.ts and rewritten to its canonical text, or the write is refused with 422 saying why.
 * Downstream stages and the stores may assume that what they see is canonical. Then every reference must
 * resolve, since data that refer to nothing belong to no person and no reservation could ever erase them:
 *
 * 1. `canonicaliseReferences`, first after authorisation: canonical text; a `urn:uuid:` names an entry of
 *    the same transaction; `#id` names a resource contained in the same resource.
 * 2. `resolveConditional`, next: a conditional reference (`Type?query`) becomes the one resource it
 *    matches in the caller's view (422 when none or several). A person named by national id
 *    (`Patient?identifier=<national id system>|<number>`) is left to the pseudonymise stage, which links
 *    the person in the identity vault; no other form may carry a national id.
 * 3. `requirePatients` and `requireTargets`, after the exclusion check (a reference to an erased person's
 *    Patient is refused there with 403): a literal names a resource written by the same write or stored
 *    and in the caller's view. Whether it does not exist or is outside the view, the answer is the same.
 *    References to Patients are checked as sent, wherever they stand, before the pseudonymise stage
 *    rewrites them to persons it links (whom a clinic may name by national id); the others after the data
 *    dictionary, so that one in an element it drops (an EPR's Practitioner, a type the registry never
 *    holds) is dropped with a warning instead of refusing the write.
 */

/** The one refusal for a literal that resolves to nothing the caller may see (also the pseudonymise stage's). */
export function danglingReference(expression: string): FhirError {
  return errors.unprocessable([
    issue(
      'not-found',
      'This reference refers to a resource that does not exist. Refer to a resource by the id the server returned (Type/id), or to another entry of the same transaction (its fullUrl); nothing was stored.',
      expression,
    ),
  ]);
}

interface EntrySite {
  index: number;
  entry: WriteEntry;
  node: { reference?: unknown };
  /** FHIRPath of the `reference` element, anchored as the write's other errors are. */
  expression: string;
}

/** Every Reference in every resource of the write (in a transaction, under `Bundle.entry[i].resource`). */
function sitesOf(write: Write): EntrySite[] {
  return write.entries.flatMap((entry, index) => {
    if (entry.resource === undefined) return [];
    const location = entryLocation(write, index);
    const root = location === undefined ? entry.resourceType : `${location}.resource`;
    return referenceSites(entry.resource, root).map((site) => ({
      index,
      entry,
      node: site.node,
      expression: `${site.expression}.reference`,
    }));
  });
}

/** A copy of the write whose resources can be rewritten in place. */
function copyOf(write: Write): Write {
  return {
    ...write,
    entries: write.entries.map((entry) =>
      entry.resource === undefined ? entry : { ...entry, resource: structuredClone(entry.resource) },
    ),
  };
}

/** A copy of the write with the references at these sites (positions in `sitesOf`) rewritten. */
function rewritten(write: Write, rewrites: ReadonlyMap<number, string>): Write {
  const copy = copyOf(write);
  // The copy's sites come in the same order as the original's.
  sitesOf(copy).forEach((site, position) => {
    const canonical = rewrites.get(position);
    if (canonical !== undefined) site.node.reference = canonical;
  });
  return copy;
}

export const canonicaliseReferences: IngestStage = (write, ctx) => {
  const sites = sitesOf(write);
  /** Site (by position) → its canonical form, where that differs from what was sent. */
  const rewrites = new Map<number, string>();
  const ownBases = [ctx.base];
  const problems: OperationOutcomeIssue[] = [];
  const fullUrls = new Set(
    write.transaction
      ? write.entries.filter((e) => e.resource !== undefined && e.fullUrl).map((e) => e.fullUrl)
      : [],
  );
  sites.forEach((site, position) => {
    const parsed = parseReference(site.node.reference as string, { ownBases });
    if (!parsed.ok) {
      problems.push(issue('value', `This reference cannot be accepted: ${parsed.reason}.`, site.expression));
      return;
    }
    const reference = parsed.reference;
    if (reference.kind === 'placeholder' && !fullUrls.has(formatReference(reference))) {
      problems.push(
        issue(
          'not-found',
          write.transaction
            ? 'This urn:uuid reference names no entry of the transaction: it must be the fullUrl of another entry of the same Bundle.'
            : 'A urn:uuid reference names another entry of the same transaction Bundle; refer to a stored resource as Type/id.',
          site.expression,
        ),
      );
      return;
    }
    if (reference.kind === 'contained' && !containedIds(site.entry.resource).has(reference.id)) {
      problems.push(
        issue(
          'not-found',
          `This reference names no contained resource: "#${reference.id}" must be the id of a resource in the same resource's contained list.`,
          site.expression,
        ),
      );
      return;
    }
    const canonical = formatReference(reference);
    if (canonical !== site.node.reference) rewrites.set(position, canonical);
  });
  // Copied only when a reference changes: most writes already use the canonical form (a 98-item response
  // is copied in 0.15-0.5 ms).
  const out = rewrites.size === 0 ? { ...write } : rewritten(write, rewrites);
  out.entries = out.entries.map((entry, index) => {
    const query = (text: string | undefined, element: string): string | undefined =>
      text === undefined
        ? undefined
        : canonicalQuery(entry.resourceType, text, ownBases, (reason) =>
            problems.push(
              issue(
                'value',
                `A reference in this conditional query cannot be accepted: ${reason}.`,
                entryLocation(write, index) === undefined
                  ? element
                  : `${entryLocation(write, index)}.request.${element === 'If-None-Exist' ? 'ifNoneExist' : 'url'}`,
              ),
            ),
          );
    const ifNoneExist = query(entry.ifNoneExist, 'If-None-Exist');
    const conditionalQuery = query(entry.conditionalQuery, 'url');
    return ifNoneExist === entry.ifNoneExist && conditionalQuery === entry.conditionalQuery
      ? entry
      : { ...entry, ifNoneExist, conditionalQuery };
  });
  if (problems.length > 0) {
    throw errors.unprocessable(problems);
  }
  return out;
};

function containedIds(resource: Resource | undefined): Set<string> {
  const contained = (resource as { contained?: { id?: unknown }[] } | undefined)?.contained ?? [];
  return new Set(contained.map((c) => c.id).filter((id): id is string => typeof id === 'string'));
}

/**
 * A conditional query with the values of its reference parameters (`subject=…`, `patient:Patient=…`)
 * in canonical form; bare ids and parameters that are not references are left as they are. The text is
 * rebuilt only when a value changed.
 */
function canonicalQuery(
  resourceType: string,
  query: string,
  ownBases: string[],
  refuse: (reason: string) => void,
): string {
  const params = new URLSearchParams(query);
  let changed = false;
  const out = new URLSearchParams();
  for (const [name, value] of params) {
    if (!isReferenceParameter(resourceType, name)) {
      out.append(name, value);
      continue;
    }
    const values = value.split(',').map((token) => {
      if (!token.includes('/') && !token.includes(':')) return token; // a bare id
      const parsed = parseReference(token, { ownBases });
      if (!parsed.ok) {
        refuse(parsed.reason);
        return token;
      }
      if (parsed.reference.kind !== 'literal' && parsed.reference.kind !== 'placeholder') {
        refuse('a search value names a resource as Type/id');
        return token;
      }
      return formatReference(parsed.reference);
    });
    const canonical = values.join(',');
    changed ||= canonical !== value;
    out.append(name, canonical);
  }
  return changed ? out.toString() : query;
}

/** `code` or `code:Type` of a reference search parameter (not `:identifier`, `:missing` or a chain). */
function isReferenceParameter(resourceType: string, name: string): boolean {
  if (name.includes('.')) return false;
  const [code, modifier] = name.split(':');
  if (modifier !== undefined && !/^[A-Z]/.test(modifier)) return false;
  return getSearchParameters(resourceType)?.[code]?.type === 'reference';
}

// ---- resolution ----

export interface ReferenceResolutionDeps extends ViewDeps {
  store: FhirStore;
  /** A Patient's units without a store round trip when the façade knows them (src/store/patientFacts.ts). */
  patients: StoredPatients;
  /** Conditional queries are matched against what is stored (hashed identifiers, pseudonyms). */
  translator: SearchTranslator;
}

export interface ReferenceResolution {
  resolveConditional: IngestStage;
  /** Every literal reference to a Patient, as sent. */
  requirePatients: IngestStage;
  /** Every other literal reference, in what the data dictionary keeps. */
  requireTargets: IngestStage;
}

export function createReferenceResolution(deps: ReferenceResolutionDeps): ReferenceResolution {
  return {
    async resolveConditional(write, ctx) {
      // Most writes carry no conditional reference: they pass as they came, uncopied (a 98-item response
      // is copied in 0.2–0.5 ms; bench/ingest --profile).
      const conditional = sitesOf(write).some((site) => {
        const parsed = parseReference(site.node.reference as string);
        return parsed.ok && parsed.reference.kind === 'conditional';
      });
      if (!conditional) return write;
      const out = copyOf(write);
      const view = createView(ctx.principal, deps);
      const resolved = new Map<string, string>();
      for (const site of sitesOf(out)) {
        const parsed = parseReference(site.node.reference as string);
        if (!parsed.ok || parsed.reference.kind !== 'conditional' || byNationalId(parsed.reference, site)) {
          continue;
        }
        const text = formatReference(parsed.reference);
        const literal = resolved.get(text) ?? (await matchOne(deps, view, parsed.reference, site.expression));
        resolved.set(text, literal);
        site.node.reference = literal;
      }
      return out;
    },

    requirePatients: (write, ctx) => requireTargets(deps, write, ctx, (type) => type === 'Patient'),
    requireTargets: (write, ctx) => requireTargets(deps, write, ctx, (type) => type !== 'Patient'),
  };
}

/** Every literal whose target type `checked` selects names a resource written by the write or visible. */
async function requireTargets(
  deps: ReferenceResolutionDeps,
  write: Write,
  ctx: IngestContext,
  checked: (type: ResourceType) => boolean,
): Promise<Write> {
  const view = createView(ctx.principal, deps);
  const written = new Set(
    write.entries
      .filter((e) => e.method === 'PUT' && e.id !== undefined)
      .map((e) => literalKey({ resourceType: e.resourceType, id: e.id as string })),
  );
  const known = new Map<string, boolean>();
  for (const site of sitesOf(write)) {
    const parsed = parseReference(site.node.reference as string);
    if (!parsed.ok || parsed.reference.kind !== 'literal' || !checked(parsed.reference.resourceType))
      continue;
    const target = parsed.reference;
    if (written.has(literalKey(target))) continue;
    const text = formatReference(target);
    const exists = known.get(text) ?? (await visibleTarget(deps, view, target));
    known.set(text, exists);
    if (!exists) {
      throw danglingReference(site.expression);
    }
  }
  return write;
}

/**
 * Whether a conditional reference names a person by national id: left to the pseudonymise stage when it
 * has the one form that stage accepts, refused when a national id system appears in any other form (it
 * would otherwise be matched, or stored, as plain text).
 */
function byNationalId(reference: ParsedReference & { kind: 'conditional' }, site: EntrySite): boolean {
  const identifier = identifierOfConditional(reference);
  if (reference.resourceType === 'Patient' && identifier && isNationalIdSystem(identifier.system)) {
    return true;
  }
  const mentionsNationalId = [...new URLSearchParams(reference.query).values()].some((value) =>
    value.split(',').some((token) => token.includes('|') && isNationalIdSystem(token.split('|')[0])),
  );
  if (mentionsNationalId && reference.resourceType === 'Patient') {
    throw errors.unprocessable([
      issue(
        'value',
        'A person is referenced by national id only as Patient?identifier=<system>|<number>, with no other search parameter, or with Reference.identifier.',
        site.expression,
      ),
    ]);
  }
  return false;
}

/** The literal of the one resource in the caller's view that a conditional reference matches. */
async function matchOne(
  deps: ReferenceResolutionDeps,
  view: View,
  reference: ParsedReference & { kind: 'conditional' },
  expression: string,
): Promise<string> {
  const params = new URLSearchParams(
    deps.translator.query(reference.resourceType, reference.query, expression),
  );
  params.set('_count', '2');
  let request;
  try {
    request = view.narrow(planSearch(reference.resourceType, params).request);
  } catch (err) {
    if (isFhirError(err) && err.status === 400) {
      const reason = err.outcome.issue?.[0]?.details?.text ?? 'the search is not valid';
      throw errors.unprocessable([
        issue('value', `This conditional reference cannot be searched: ${reason}`, expression),
      ]);
    }
    throw err;
  }
  const matches =
    request === undefined ? [] : (await deps.store.search(request)).matches.filter((r) => view.visible(r));
  if (matches.length !== 1) {
    throw errors.unprocessable([
      matches.length === 0
        ? issue(
            'not-found',
            'This conditional reference matches no resource; refer to an existing resource, or send it in the same transaction. Nothing was stored.',
            expression,
          )
        : issue(
            'multiple-matches',
            'This conditional reference matches more than one resource; make its search select one, or refer to the resource as Type/id. Nothing was stored.',
            expression,
          ),
    ]);
  }
  return literalKey({ resourceType: reference.resourceType, id: matches[0].id as string });
}

/** Whether the literal's target (that version, if it names one) is stored and within the caller's reach. */
async function visibleTarget(
  { store, patients }: ReferenceResolutionDeps,
  view: View,
  target: { resourceType: ResourceType; id: string; version?: string },
): Promise<boolean> {
  const reach = roleReach(view.principal.role, target.resourceType, 'r');
  if (target.resourceType === 'Patient' && target.version === undefined) {
    // Whether a Patient is in reach depends on its id and unit labels only (src/auth/view.ts).
    const units = await patients.patientUnits(target.id);
    return (
      units !== undefined &&
      reach !== undefined &&
      view.inReach(withUnitLabels({ resourceType: 'Patient', id: target.id }, units), reach)
    );
  }
  try {
    const resource =
      target.version === undefined
        ? await store.read(target.resourceType, target.id)
        : await store.vread(target.resourceType, target.id, target.version);
    return reach !== undefined && view.inReach(resource, reach);
  } catch (err) {
    if (isFhirError(err) && (err.status === 404 || err.status === 410)) return false;
    throw err;
  }
}
