import { evalFhirPath, getSearchParameters, Operator, type Filter, type SearchRequest } from '@medplum/core';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { patientCompartmentParams } from '../fhir/definitions';
import { errors, isFhirError } from '../fhir/outcomes';
import { literalKey, literalKeyOf } from '../fhir/reference';
import type { FhirStore, HistoryOptions, HistoryResult, SearchResult } from '../store/FhirStore';
import { readOnlyStore } from '../store/readOnly';
import { decide, type Reach } from './matrix';
import type { Principal } from './principal';
import { unitsFilter, unitsOf, withUnitLabels } from './unitLabel';

/**
 * The view (DESIGN §5): what one principal sees of the clinical store, decided in this one place for
 * every read path — read, vread, search (its matches, `_include` and `_revinclude`), history, the
 * resources a transaction returns, and custom operations reading through the context's store.
 *
 * - registry staff: everything (pseudonymised);
 * - clinic: the resources labelled with its unit (src/auth/unitLabel.ts), plus shared definitions; of a
 *   person several units share, it sees only its own unit's label (which units treat a person is theirs);
 * - portal: the person in its token: their Patient and the resources whose subject or patient is the
 *   person (the same search parameter the store filter uses), not every resource that mentions them (a
 *   resource naming them as performer is someone else's record), plus definitions;
 * - researcher: shared definitions; person data only through the study view (src/research), which
 *   answers a researcher's reads instead of this view, so here its reach sees nothing.
 *
 * Searches are narrowed in the store itself (a `_security` or compartment filter is added), so paging and
 * totals stay right and chained parameters only ever match among visible resources; includes and history
 * entries are filtered after the fact. A resource outside the view reads as 404, byte for byte like one
 * that does not exist (also when it has been deleted), so ids cannot be probed.
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
  /** A visible resource as this principal is shown it (a clinic: without other units' labels). */
  present<T extends Resource>(resource: T): T;
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
    if (reach === 'own-study') return 'none';
    if (reach === 'own-unit') {
      return principal.organization === undefined ? 'none' : unitsFilter([principal.organization]);
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
        return id !== undefined && isAboutPerson(resource, id);
      }
      case 'own-study':
        return false;
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
    present(resource) {
      if (principal.role !== 'clinic' || unitsOf(resource).length === 0) return resource;
      return withUnitLabels(
        resource,
        unitsOf(resource).filter((unit) => unit === principal.organization),
      );
    },
  };
}

/**
 * Whether a resource is the person's Patient or has the person as its subject or patient: the value of
 * the search parameter that ties a portal search to the person (personParam), evaluated as the store
 * indexes it, so that reading and searching agree.
 */
function isAboutPerson(resource: Resource, patientId: string): boolean {
  if (resource.resourceType === 'Patient') {
    return resource.id === patientId;
  }
  const code = personParam(resource.resourceType);
  const expression =
    code === undefined ? undefined : getSearchParameters(resource.resourceType)?.[code]?.expression;
  if (expression === undefined) {
    return false;
  }
  const wanted = literalKey({ resourceType: 'Patient', id: patientId });
  return evalFhirPath(expression, resource).some((value) => {
    const reference = (value as { reference?: unknown } | null)?.reference;
    return typeof reference === 'string' && literalKeyOf(reference) === wanted;
  });
}

/** A FhirStore that reads through a view; writes go through the ingest pipeline, never through here. */
export function viewStore(store: FhirStore, view: View): FhirStore {
  // One answer for "no such resource" and "not yours", whatever the store's own wording.
  const hidden = (type: string) => errors.notFound(`${type} not found.`);
  /** Whether any version of the resource is visible (a deletion is news only to who saw the resource). */
  const everVisible = async (type: ResourceType, id: string): Promise<boolean> => {
    const all = await store.history(type, id, { count: 1000 });
    return all.entries.some((e) => e.resource !== undefined && view.visible(e.resource));
  };
  const readThrough = async <T extends Resource>(
    type: ResourceType,
    id: string,
    fetch: () => Promise<T>,
  ): Promise<T> => {
    let resource: T;
    try {
      resource = await fetch();
    } catch (err) {
      if (
        isFhirError(err) &&
        (err.status === 404 || (err.status === 410 && !(await everVisible(type, id))))
      ) {
        throw hidden(type);
      }
      throw err;
    }
    if (!view.visible(resource)) throw hidden(type);
    return resource;
  };
  return readOnlyStore({
    kind: store.kind,
    read<T extends Resource>(type: ResourceType, id: string): Promise<T> {
      return readThrough(type, id, () => store.read<T>(type, id));
    },
    vread<T extends Resource>(type: ResourceType, id: string, versionId: string): Promise<T> {
      return readThrough(type, id, () => store.vread<T>(type, id, versionId));
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
        if (!(await everVisible(type, id))) {
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
    ping: () => store.ping(),
    close: () => store.close(),
  });
}

/**
 * A response body as the principal is shown it: every resource in it presented by the view (View.present),
 * and what a transaction or batch wrote or matched outside the view left out (the entry's status stays;
 * searches and reads are already held to the view by the view store).
 */
export function presentResponse(body: Resource | undefined, view: View): Resource | undefined {
  if (body === undefined || body.resourceType === 'OperationOutcome') {
    return body;
  }
  if (body.resourceType !== 'Bundle') {
    return view.present(body);
  }
  const bundle = body as Bundle;
  const written = bundle.type === 'transaction-response' || bundle.type === 'batch-response';
  if (bundle.entry === undefined) {
    return bundle;
  }
  return {
    ...bundle,
    entry: bundle.entry.map((entry) => {
      const resource = entry.resource;
      if (resource === undefined) {
        return entry;
      }
      if (
        written &&
        resource.resourceType !== 'OperationOutcome' &&
        resource.resourceType !== 'Bundle' &&
        !view.visible(resource)
      ) {
        const { resource: _hidden, ...rest } = entry;
        return rest;
      }
      return { ...entry, resource: presentResponse(resource, view) };
    }),
  };
}
