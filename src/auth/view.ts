import { Operator, type Filter, type SearchRequest } from '@medplum/core';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { patientCompartmentParams } from '../fhir/definitions';
import { errors } from '../fhir/outcomes';
import { literalKeyOf } from '../fhir/reference';
import type { FhirStore, HistoryOptions, HistoryResult, SearchResult } from '../store/FhirStore';
import { decide, type Reach } from './matrix';
import type { Principal } from './principal';
import { UNIT_LABEL_SYSTEM, unitsOf } from './unitLabel';

/**
 * The view (DESIGN §5): what one principal sees of the clinical store, decided in this one place for
 * every read path — read, vread, search (its matches, `_include` and `_revinclude`), history, the
 * resources a transaction returns, and custom operations reading through the context's store.
 *
 * - registry staff: everything (pseudonymised);
 * - clinic: the resources labelled with its unit (src/auth/unitLabel.ts), plus shared definitions;
 * - portal: the person in its token (their Patient and the resources referring to it), plus definitions;
 * - researcher: shared definitions only (the study view is a later issue).
 *
 * Searches are narrowed in the store itself (a `_security` or compartment filter is added), so paging and
 * totals stay right and chained parameters only ever match among visible resources; includes and history
 * entries are filtered after the fact. A resource outside the view reads as 404, like one that does not
 * exist, so ids cannot be probed.
 */
export interface View {
  readonly principal: Principal;
  /** Whether the principal may see this resource (type allowed by the matrix and within reach). */
  visible(resource: Resource): boolean;
  /** Whether the resource is within a reach for this principal (its unit's, its person's, or any). */
  inReach(resource: Resource, reach: Reach): boolean;
  /** The search restricted to the principal's reach, or undefined when nothing can match. */
  narrow<T extends Resource>(request: SearchRequest<T>): SearchRequest<T> | undefined;
  /** The same restriction as a query string to append to a conditional create or update. */
  conditionalFilter(type: ResourceType): string | undefined;
}

export interface ViewDeps {
  /** The pseudonymous Patient id of the person a portal token acts for; undefined when unknown. */
  personOf(principal: Principal): string | undefined;
}

/** For each type of the Patient compartment, the search parameters that point at the Patient. */
function patientParams(type: string): readonly string[] {
  return patientCompartmentParams().get(type as ResourceType) ?? [];
}

/** The parameter by which a portal search is tied to the person: `patient` where it exists. */
function personParam(type: string): string | undefined {
  const params = patientParams(type);
  return params.includes('patient') ? 'patient' : params.includes('subject') ? 'subject' : params[0];
}

export function createView(principal: Principal, deps: ViewDeps): View {
  const personId = (): string | undefined =>
    principal.role === 'portal' ? deps.personOf(principal) : undefined;
  const reachOf = (type: string, permission: 'r' | 's') => {
    const decision = decide(principal, type, permission);
    return decision.allowed ? decision.reach : undefined;
  };

  const filterFor = (type: string, permission: 'r' | 's'): Filter | 'none' | 'all' => {
    const reach = reachOf(type, permission);
    if (reach === undefined) return 'none';
    if (reach === 'all') return 'all';
    if (reach === 'own-unit') {
      return principal.organization === undefined
        ? 'none'
        : {
            code: '_security',
            operator: Operator.EQUALS,
            value: `${UNIT_LABEL_SYSTEM}|${principal.organization}`,
          };
    }
    const id = personId();
    if (id === undefined) return 'none';
    if (type === 'Patient') return { code: '_id', operator: Operator.EQUALS, value: id };
    const param = personParam(type);
    return param === undefined ? 'none' : { code: param, operator: Operator.EQUALS, value: `Patient/${id}` };
  };

  const inReach = (resource: Resource, reach: Reach): boolean => {
    switch (reach) {
      case 'all':
        return true;
      case 'own-unit':
        return principal.organization !== undefined && unitsOf(resource).includes(principal.organization);
      case 'own-person': {
        const id = personId();
        return id !== undefined && concernsPerson(resource, id);
      }
    }
  };

  return {
    principal,
    visible(resource) {
      const reach = reachOf(resource.resourceType, 'r');
      return reach !== undefined && inReach(resource, reach);
    },
    inReach,
    narrow(request) {
      const filter = filterFor(request.resourceType, 's');
      if (filter === 'none') return undefined;
      if (filter === 'all') return request;
      return { ...request, filters: [...(request.filters ?? []), filter] };
    },
    conditionalFilter(type) {
      const filter = filterFor(type, 's');
      if (filter === 'all') return undefined;
      // A query that can match nothing: the conditional write then creates instead of touching others' data.
      if (filter === 'none') return '_id=not-visible';
      return new URLSearchParams([[filter.code, filter.value]]).toString();
    },
  };
}

/** Whether a resource is the person's Patient or refers to it (subject, patient, author, target, …). */
function concernsPerson(resource: Resource, patientId: string): boolean {
  if (resource.resourceType === 'Patient') {
    return resource.id === patientId;
  }
  const wanted = `Patient/${patientId}`;
  const seen = (value: unknown): boolean => {
    if (Array.isArray(value)) return value.some(seen);
    if (typeof value !== 'object' || value === null) return false;
    const reference = (value as { reference?: unknown }).reference;
    if (typeof reference === 'string' && literalKeyOf(reference) === wanted) return true;
    return Object.values(value).some(seen);
  };
  return seen(resource);
}

/** A FhirStore that reads through a view; writes go through the ingest pipeline, never through here. */
export function viewStore(store: FhirStore, view: View): FhirStore {
  const hidden = (type: string) => errors.notFound(`${type} not found.`);
  const readOnly = (): never => {
    throw new Error('The view store is read-only; writes go through the ingest pipeline');
  };
  return {
    kind: store.kind,
    async read<T extends Resource>(type: ResourceType, id: string): Promise<T> {
      const resource = await store.read<T>(type, id);
      if (!view.visible(resource)) throw hidden(type);
      return resource;
    },
    async vread<T extends Resource>(type: ResourceType, id: string, versionId: string): Promise<T> {
      const resource = await store.vread<T>(type, id, versionId);
      if (!view.visible(resource)) throw hidden(type);
      return resource;
    },
    async search<T extends Resource>(request: SearchRequest<T>): Promise<SearchResult<T>> {
      const narrowed = view.narrow(request);
      if (narrowed === undefined) {
        return { matches: [], included: [], total: 0 };
      }
      const result = await store.search(narrowed);
      return {
        ...result,
        // Defence in depth: the store filter already holds these to the view.
        matches: result.matches.filter((r) => view.visible(r)),
        included: result.included.filter((r) => view.visible(r)),
      };
    },
    async history(
      type: ResourceType,
      id: string | undefined,
      options?: HistoryOptions,
    ): Promise<HistoryResult> {
      const probe: SearchRequest = { resourceType: type };
      const narrowed = view.narrow(probe);
      if (narrowed === undefined) {
        return { entries: [], total: 0 };
      }
      const result = await store.history(type, id, options);
      if (narrowed === probe) {
        return result; // the principal sees everything of this type
      }
      const visibleIds = new Set(
        result.entries.filter((e) => e.resource !== undefined && view.visible(e.resource)).map((e) => e.id),
      );
      if (id !== undefined && !visibleIds.has(id)) {
        // This page holds only deletions of the instance, or it is not the principal's: ask its versions.
        const all = await store.history(type, id, { count: 1000 });
        if (!all.entries.some((e) => e.resource !== undefined && view.visible(e.resource))) {
          throw hidden(type);
        }
        visibleIds.add(id);
      }
      const entries = result.entries.filter(
        (e) => visibleIds.has(e.id) && (e.resource === undefined || view.visible(e.resource)),
      );
      // The store's total would count other units' versions too; a narrowed view counts this page only.
      return { ...result, entries, total: entries.length };
    },
    create: readOnly,
    update: readOnly,
    conditionalUpdate: readOnly,
    delete: readOnly,
    transaction: readOnly,
    erasePatientCompartment: readOnly,
    eraseResource: readOnly,
    ping: () => store.ping(),
    close: () => store.close(),
  };
}

/** A transaction or batch response without the resources outside the view (their status stays). */
export function filterResponseBundle(bundle: Bundle, view: View): Bundle {
  return {
    ...bundle,
    entry: bundle.entry?.map((entry) => {
      if (
        entry.resource === undefined ||
        entry.resource.resourceType === 'OperationOutcome' ||
        view.visible(entry.resource)
      ) {
        return entry;
      }
      const { resource: _hidden, ...rest } = entry;
      return rest;
    }),
  };
}
