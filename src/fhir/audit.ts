import { parseSearchRequest } from '@medplum/core';
import type { AuditEvent, Bundle, Resource } from '@medplum/fhirtypes';
import {
  buildAuditEvent,
  outcomeForHttpStatus,
  patientPseudonymsOf,
  type AuditInteraction,
  type AuditOutcome,
  type AuditSink,
} from '../audit/auditEvent';
import type { AuditLog } from '../audit/log';
import { dataDictionary, isStorableId } from '../dictionary';
import { containsNationalId } from '../identity/nationalId';
import { interactionOf, touchedBy } from '../audit/requestFacts';
import { searchAuditEvents, viewForPerson, type AuditScope } from '../audit/search';
import type { Principal } from '../auth/principal';
import type { FhirInteraction, TypeHandler } from './classify';
import type { IngestDeps } from '../ingest/pipeline';
import { errors } from './outcomes';
import { literalKey, parseLiteralKey } from './reference';
import { isResourceType } from './resourceTypes';

/**
 * One AuditEvent per FHIR request that reads or changes data, success or failure (DESIGN §3.4), built
 * from what the router knows after answering: who (the principal, or none when authentication failed),
 * the interaction (from method and path), the resources and persons the answer or the write concerned
 * (registry pseudonyms via the vault's keyed lookup, never a national id) and the HTTP outcome.
 * Recording happens before the answer is sent; if it fails, the request fails.
 */
export interface RequestAuditFacts {
  principal?: Principal;
  /** The request's classification (src/fhir/classify.ts); undefined when its path could not be decoded. */
  interaction?: FhirInteraction;
  status: number;
  /** The response body and, for writes, what was written (`Type/id`, from the Location). */
  body?: Resource;
  written?: string;
  /** Registry pseudonyms of persons the request concerned beyond what body and written show. */
  persons?: string[];
  /** The Bundle type of a POST to the base (batch or transaction). */
  bundleType?: string;
  requestId?: string;
}

export type RequestAuditor = (facts: RequestAuditFacts) => Promise<void>;

export interface RequestAuditDeps {
  sink: AuditSink;
  /** Registry pseudonym of a pseudonymous Patient id (vault lookup; reveals no national id). */
  pseudonymOfPatient(patientId: string): string | undefined;
  /** Registry pseudonym of the person a portal token acts for. */
  pseudonymOfPrincipal(principal: Principal): string | undefined;
}

export function createRequestAuditor(deps: RequestAuditDeps): RequestAuditor {
  return async (facts) => {
    const { interaction, operation } = interactionOf(facts.interaction, facts.bundleType);
    const touched = touchedBy([facts.body]);
    const resources = new Set(touched.resources);
    const patientIds = new Set(touched.patientIds);
    const written = facts.written === undefined ? undefined : parseLiteralKey(facts.written);
    if (written !== undefined) {
      resources.add(literalKey(written));
      if (written.resourceType === 'Patient') patientIds.add(written.id);
    }
    const what = facts.interaction;
    const type = what !== undefined && 'type' in what ? what.type : undefined;
    const id = what !== undefined && 'id' in what ? what.id : undefined;
    if (type !== undefined) {
      if (id !== undefined) {
        resources.add(`${type}/${id}`);
        if (type === 'Patient') patientIds.add(id);
      } else if (resources.size === 0) {
        resources.add(type);
      }
    }
    await deps.sink.record(
      auditEventOf(deps, {
        principal: facts.principal,
        interaction,
        operation,
        resources,
        patientIds,
        pseudonyms: [...touched.pseudonyms, ...(facts.persons ?? [])],
        outcome: outcomeForHttpStatus(facts.status),
        entryOutcomes: entryStatuses(facts.body),
        requestId: facts.requestId,
      }),
    );
  };
}

/** Each entry's status code of a batch or transaction response, so the entry names every outcome. */
function entryStatuses(body: Resource | undefined): string[] | undefined {
  const bundle = body as Bundle | undefined;
  if (
    bundle?.resourceType !== 'Bundle' ||
    (bundle.type !== 'batch-response' && bundle.type !== 'transaction-response')
  ) {
    return undefined;
  }
  return (bundle.entry ?? []).map((entry) => /^\d{3}/.exec(entry.response?.status ?? '')?.[0] ?? '?');
}

/**
 * The audit entry of a write, built before the write is sent (src/ingest/persist.ts) from what it will
 * change, and checked by the audit log's guard: a write whose entry could not be recorded is refused
 * before anything is stored. Recovery records it should the request's own entry be missing after a crash.
 */
export function createPendingAudit(
  deps: Omit<RequestAuditDeps, 'sink'> & { check(event: AuditEvent): void },
): NonNullable<IngestDeps['pendingAudit']> {
  return (write, ctx, targets) => {
    const touched = touchedBy(write.entries.map((entry) => entry.resource));
    const single = write.entries[0];
    const event = auditEventOf(deps, {
      principal: ctx.principal,
      interaction: write.transaction
        ? 'transaction'
        : single.method === 'DELETE'
          ? 'delete'
          : single.fresh || single.ifNoneExist !== undefined
            ? 'create'
            : 'update',
      resources: new Set(targets.map((t) => (t.id !== undefined ? `${t.type}/${t.id}` : t.type))),
      patientIds: new Set(touched.patientIds),
      pseudonyms: touched.pseudonyms,
      outcome: '0',
      requestId: ctx.requestId,
    });
    deps.check(event);
    return event;
  };
}

/** The AuditEvent for these facts: persons by registry pseudonym, nothing that looks like a national id. */
function auditEventOf(
  deps: Omit<RequestAuditDeps, 'sink'>,
  parts: {
    principal?: Principal;
    interaction: AuditInteraction;
    operation?: string;
    resources: Set<string>;
    patientIds: Set<string>;
    pseudonyms: string[];
    outcome: AuditOutcome;
    entryOutcomes?: string[];
    requestId?: string;
  },
): AuditEvent {
  const patients = new Set(parts.pseudonyms);
  for (const patientId of parts.patientIds) {
    const pseudonym = deps.pseudonymOfPatient(patientId);
    if (pseudonym !== undefined) patients.add(pseudonym);
  }
  // A client can choose ids and request ids; anything that looks like a national id is left out (a
  // resource is named by its type only, see loggedAs), so that it never reaches the log and cannot make
  // auditing fail.
  const safe = (value: string) => !containsNationalId(value);
  const principal = parts.principal;
  return buildAuditEvent({
    principal,
    interaction: parts.interaction,
    operation: parts.operation,
    resources: [...parts.resources].flatMap(loggedAs),
    patients: [...patients].filter(safe),
    actorPseudonym: principal?.role === 'portal' ? deps.pseudonymOfPrincipal(principal) : undefined,
    outcome: parts.outcome,
    entryOutcomes: parts.entryOutcomes,
    requestId: parts.requestId !== undefined && safe(parts.requestId) ? parts.requestId : undefined,
  });
}

/**
 * How the log names a resource: as `Type/id`, or by its type alone when the id looks like a national id
 * or is a chosen id of person data, which is refused and not kept in the log either (src/dictionary
 * isStorableId). A type stands for itself; anything else names no resource and is left out.
 */
function loggedAs(resource: string): string[] {
  const key = parseLiteralKey(resource);
  if (key === undefined) {
    return isResourceType(resource) ? [resource] : [];
  }
  return !containsNationalId(resource) && isStorableId(dataDictionary, key.resourceType, key.id)
    ? [resource]
    : [key.resourceType];
}

/**
 * `GET /fhir/AuditEvent?…` (or `POST …/_search`) and `GET /fhir/AuditEvent/{id}` over the audit log
 * (src/audit/search.ts): registry staff see every entry; a portal token sees the entries about its own
 * person (by the registry pseudonym of the token's pid), each reduced so that others' pseudonyms and
 * resource ids do not show. The matrix (src/auth/matrix.ts) has already refused every other role. The
 * log is read-only: every other interaction on AuditEvent is refused with 405.
 */
export function auditEventOperation(deps: {
  log: AuditLog;
  pseudonymOfPrincipal(principal: Principal): string | undefined;
}): TypeHandler {
  return async (ctx, { what, params: given }) => {
    if (what.kind !== 'read' && what.kind !== 'search') {
      throw errors.methodNotAllowed(
        'The audit log is read-only: GET /fhir/AuditEvent or /fhir/AuditEvent/{id}.',
        ['GET'],
      );
    }
    const scope = auditScope(ctx.principal, deps.pseudonymOfPrincipal);
    if (what.kind === 'read') {
      const event = deps.log.read(what.id);
      if (
        event === undefined ||
        (scope.kind === 'person' && !patientPseudonymsOf(event).includes(scope.pseudonym))
      ) {
        throw errors.notFound('No audit event with this id is visible to this token.');
      }
      return {
        status: 200,
        body: scope.kind === 'person' ? viewForPerson(event, scope.pseudonym) : event,
        headers: {},
      };
    }
    const params = new URLSearchParams();
    for (const [key, value] of given) {
      if (key !== '_format' && key !== '_pretty' && value !== '') params.append(key, value);
    }
    let search;
    try {
      search = parseSearchRequest(
        'AuditEvent',
        Object.fromEntries([...new Set(params.keys())].map((k) => [k, params.getAll(k)])),
      );
    } catch (err) {
      throw errors.badRequest(`The search could not be parsed: ${(err as Error).message}`);
    }
    const result = searchAuditEvents(deps.log, search, scope);
    const base = `${ctx.base}/AuditEvent`;
    const offset = search.offset ?? 0;
    const page = (at: number) => {
      const next = new URLSearchParams(params);
      next.delete('_offset');
      if (at > 0) next.set('_offset', String(at));
      const query = next.toString();
      return query === '' ? base : `${base}?${query}`;
    };
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: result.total,
      link: [
        { relation: 'self', url: page(offset) },
        ...(result.nextOffset !== undefined ? [{ relation: 'next', url: page(result.nextOffset) }] : []),
      ],
      entry: result.matches.map((event) => ({
        fullUrl: `${base}/${event.id}`,
        resource: event,
        search: { mode: 'match' as const },
      })),
    };
    return { status: 200, body: bundle, headers: {} };
  };
}

function auditScope(
  principal: Principal,
  pseudonymOf: (principal: Principal) => string | undefined,
): AuditScope {
  if (principal.role === 'registry-admin') {
    return { kind: 'all' };
  }
  if (principal.role === 'portal') {
    const pseudonym = pseudonymOf(principal);
    // A person the registry does not hold has no entries; an impossible pseudonym finds none.
    return { kind: 'person', pseudonym: pseudonym ?? '-' };
  }
  throw errors.forbidden('Only registry staff and the portal (for its own person) may read the audit log.');
}
