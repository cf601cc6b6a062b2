import type { Bundle, BundleEntry, Resource, ResourceType } from '@medplum/fhirtypes';
import type { Principal } from '../auth/principal';
import type { View } from '../auth/view';
import type { RequestIntents } from '../ingest/journal';
import type { IngestPipeline } from '../ingest/pipeline';
import type { PersistOutcome } from '../ingest/persist';
import type { WriteEntry } from '../ingest/write';
import type { FhirStore } from '../store/FhirStore';
import { typeHandlerOf, type FhirOperation, type OperationRequest } from './classify';
import { errors, issue, operationOutcome } from './outcomes';
import { etag, httpDate, type FhirResponse, type ReturnPreference } from './http';
import { pageUrl, planSearch, DEFAULT_COUNT, MAX_COUNT } from './search';
import { subsetResource, parseElements, type Subsetting } from './subsetting';

/**
 * The FHIR RESTful interactions, independent of Express so that batch entries run through exactly the
 * same code as plain requests. Writes become a Write and go through the ingest pipeline.
 */

export interface InteractionContext {
  store: FhirStore;
  ingest: IngestPipeline;
  principal: Principal;
  requestId: string;
  /** The FHIR base URL as clients see it, without a trailing slash. */
  base: string;
  /** What the principal may see; `store` already reads through it (src/auth/view.ts). */
  view?: View;
  /** Most entries a batch or transaction Bundle may have. */
  maxBundleEntries?: number;
  /** The operation table (src/fhir/classify.ts): `$name` operations and per-type handlers. */
  operations?: readonly FhirOperation[];
  /** Rewrites search parameters to what the store holds: national ids → pseudonymous Patient, business
   * identifiers → keyed hashes (src/identity/searchTranslation.ts). */
  translateSearch?: (type: ResourceType, params: URLSearchParams, principal: Principal) => URLSearchParams;
  /** The write intents of this request, closed once its audit entry is recorded (src/ingest/journal.ts). */
  intents?: RequestIntents;
}

/** One request to the FHIR API, however it arrived (HTTP or batch entry), with its classification. */
export interface Interaction {
  request: OperationRequest;
  ifMatch?: string;
  ifNoneExist?: string;
  prefer: ReturnPreference;
}

/** Answers a classified interaction: an operation or type handler from the table, else the store. */
export async function perform(ctx: InteractionContext, interaction: Interaction): Promise<FhirResponse> {
  const { request } = interaction;
  const { what, params } = request;
  switch (what.kind) {
    case 'unknown':
      throw what.status === 405
        ? errors.methodNotAllowed(what.reason, what.allow ?? [])
        : errors.notFound(what.reason);
    case 'operation': {
      const response = await what.operation.handle(ctx, { ...request, what });
      if (response === undefined) throw errors.notFound('No such operation on this endpoint.');
      return response;
    }
    case 'capabilities':
    case 'bundle':
      throw errors.badRequest('A batch entry cannot be the capability statement or another Bundle.');
    case 'history':
      if (what.type === undefined) throw errors.notFound('System-level history is not supported.');
  }
  const handler = typeHandlerOf(ctx.operations ?? [], what.type);
  if (handler) {
    return handler.handle(ctx, { ...request, what });
  }
  switch (what.kind) {
    case 'search':
      return search(ctx, what.type, params);
    case 'create':
      return write(ctx, interaction, {
        method: 'POST',
        resourceType: what.type,
        ifNoneExist: interaction.ifNoneExist,
      });
    case 'conditional-update':
      return conditionalUpdate(ctx, what.type, interaction);
    case 'read':
      return read(ctx, what.type, what.id, params);
    case 'update':
      return write(ctx, interaction, {
        method: 'PUT',
        resourceType: what.type,
        id: what.id,
        ifMatch: interaction.ifMatch,
      });
    case 'delete':
      return remove(ctx, interaction, what.type, what.id);
    case 'history':
      return history(ctx, what.type as ResourceType, what.id, params);
    case 'vread': {
      const resource = await ctx.store.vread(what.type, what.id, what.versionId);
      return resourceResponse(200, withSubsetting(resource, what.type, params));
    }
  }
}

async function read(
  ctx: InteractionContext,
  type: ResourceType,
  id: string,
  params: URLSearchParams,
): Promise<FhirResponse> {
  const resource = await ctx.store.read(type, id);
  return resourceResponse(200, withSubsetting(resource, type, params));
}

/** _elements / _summary on a read. */
function withSubsetting(resource: Resource, type: string, params: URLSearchParams): Resource {
  const elements = params.get('_elements');
  const summary = params.get('_summary');
  let subsetting: Subsetting | undefined;
  if (elements) {
    subsetting = { elements: parseElements(type, elements) };
  } else if (summary === 'true' || summary === 'text' || summary === 'data') {
    subsetting = { summary };
  }
  return subsetting ? subsetResource(resource, subsetting) : resource;
}

function resourceResponse(status: number, resource: Resource, location?: string): FhirResponse {
  const headers: Record<string, string> = {};
  const tag = etag(resource.meta?.versionId);
  const modified = httpDate(resource.meta?.lastUpdated);
  if (tag) {
    headers.ETag = tag;
  }
  if (modified) {
    headers['Last-Modified'] = modified;
  }
  if (location) {
    headers.Location = location;
  }
  return { status, body: resource, headers };
}

async function search(
  ctx: InteractionContext,
  type: ResourceType,
  searchParams: URLSearchParams,
): Promise<FhirResponse> {
  // Translated before anything else, so the store sees only pseudonyms and hashes. The links echo the query
  // as the client sent it: the translation (a person's pseudonym or Patient id) would tell the caller
  // whether a national id is in the registry (DESIGN §3.6); following a link translates it again.
  const params = ctx.translateSearch ? ctx.translateSearch(type, searchParams, ctx.principal) : searchParams;
  const plan = planSearch(type, params);
  const result = await ctx.store.search(plan.request);
  const entry: BundleEntry[] = [];
  if (!plan.countOnly) {
    for (const match of result.matches) {
      const resource = plan.subsetting ? subsetResource(match, plan.subsetting) : match;
      entry.push({ fullUrl: `${ctx.base}/${type}/${match.id}`, resource, search: { mode: 'match' } });
    }
    for (const included of result.included) {
      entry.push({
        fullUrl: `${ctx.base}/${included.resourceType}/${included.id}`,
        resource: included,
        search: { mode: 'include' },
      });
    }
  }
  const link: Bundle['link'] = [
    { relation: 'self', url: pageUrl(ctx.base, type, searchParams, plan.offset) },
  ];
  if (!plan.countOnly && result.nextOffset !== undefined) {
    link.push({ relation: 'next', url: pageUrl(ctx.base, type, searchParams, result.nextOffset) });
  }
  if (!plan.countOnly && plan.offset > 0) {
    link.push({
      relation: 'previous',
      url: pageUrl(ctx.base, type, searchParams, Math.max(0, plan.offset - plan.count)),
    });
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: result.total, link, entry };
  if (bundle.total === undefined || plan.request.total === 'none') {
    delete bundle.total;
  }
  return { status: 200, body: bundle, headers: {} };
}

async function history(
  ctx: InteractionContext,
  type: ResourceType,
  id: string | undefined,
  params: URLSearchParams,
): Promise<FhirResponse> {
  for (const key of params.keys()) {
    if (!['_count', '_offset', '_since', '_format', '_pretty'].includes(key)) {
      throw errors.badRequest(`History supports _count, _offset and _since, not '${key}'.`, key);
    }
  }
  const number = (name: string, fallback: number): number => {
    const value = params.get(name);
    if (value === null) {
      return fallback;
    }
    if (!/^\d{1,9}$/.test(value)) {
      throw errors.badRequest(`${name} must be a non-negative integer.`, name);
    }
    return Number(value);
  };
  const count = Math.min(number('_count', DEFAULT_COUNT), MAX_COUNT);
  const offset = number('_offset', 0);
  const since = params.get('_since') ?? undefined;
  if (since !== undefined && Number.isNaN(Date.parse(since))) {
    throw errors.badRequest('_since must be a FHIR instant, e.g. 2024-01-31T12:00:00Z.', '_since');
  }
  const result = await ctx.store.history(type, id, { count, offset, since });
  const path = id === undefined ? `${type}/_history` : `${type}/${id}/_history`;
  const link: Bundle['link'] = [{ relation: 'self', url: pageUrl(ctx.base, path, params, offset) }];
  if (result.nextOffset !== undefined) {
    link.push({ relation: 'next', url: pageUrl(ctx.base, path, params, result.nextOffset) });
  }
  if (offset > 0) {
    link.push({ relation: 'previous', url: pageUrl(ctx.base, path, params, Math.max(0, offset - count)) });
  }
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    total: result.total,
    link,
    entry: result.entries.map((version) => {
      const url = `${version.resourceType}/${version.id}`;
      return {
        fullUrl: `${ctx.base}/${url}`,
        resource: version.resource,
        request: { method: version.method, url: version.method === 'POST' ? version.resourceType : url },
        response: {
          status:
            version.method === 'POST'
              ? '201 Created'
              : version.method === 'DELETE'
                ? '204 No Content'
                : '200 OK',
          etag: etag(version.versionId),
          lastModified: version.lastUpdated,
        },
      };
    }),
  };
  return { status: 200, body: bundle, headers: {} };
}

function asResource(body: unknown): Resource {
  if (body === undefined) {
    throw errors.badRequest('The request body is empty; a FHIR resource was expected.');
  }
  return body as Resource;
}

async function write(
  ctx: InteractionContext,
  interaction: Interaction,
  entry: WriteEntry,
): Promise<FhirResponse> {
  const resource = asResource(interaction.request.body());
  if (entry.method === 'PUT' && entry.id !== undefined) {
    if (resource.id === undefined) {
      throw errors.badRequest(
        'An update must carry the resource id in the body, equal to the id in the URL.',
        'id',
      );
    }
    if (resource.id !== entry.id) {
      throw errors.badRequest('The id in the body does not match the id in the URL.', 'id');
    }
  }
  // A create gets a server-assigned id (FHIR: a client id on POST is ignored).
  const body = { ...resource };
  if (entry.method === 'POST') {
    delete body.id;
  }
  const outcome = await ctx.ingest.run(
    { transaction: false, entries: [{ ...entry, resource: body }] },
    { principal: ctx.principal, requestId: ctx.requestId, base: ctx.base, intents: ctx.intents },
  );
  const asked =
    entry.method === 'PUT' ? 'update' : entry.ifNoneExist === undefined ? 'create' : 'conditional create';
  return writeResponse(ctx, outcome, interaction.prefer, asked);
}

async function conditionalUpdate(
  ctx: InteractionContext,
  type: ResourceType,
  interaction: Interaction,
): Promise<FhirResponse> {
  const query = searchQuery(interaction.request.params);
  if (query === '') {
    throw errors.badRequest(
      `PUT ${type} needs a search query (conditional update) or an id: PUT ${type}/[id].`,
    );
  }
  planSearch(type, interaction.request.params); // rejects unknown parameters before anything is written
  return write(ctx, interaction, { method: 'PUT', resourceType: type, conditionalQuery: query });
}

/** The search part of a query string, without the presentation parameters. */
export function searchQuery(params: URLSearchParams): string {
  const result = new URLSearchParams();
  for (const [key, value] of params) {
    if (key !== '_format' && key !== '_pretty') {
      result.append(key, value);
    }
  }
  return result.toString();
}

async function remove(
  ctx: InteractionContext,
  interaction: Interaction,
  type: ResourceType,
  id: string,
): Promise<FhirResponse> {
  const outcome = await ctx.ingest.run(
    { transaction: false, entries: [{ method: 'DELETE', resourceType: type, id }] },
    { principal: ctx.principal, requestId: ctx.requestId, base: ctx.base, intents: ctx.intents },
  );
  return writeResponse(ctx, outcome, interaction.prefer, 'delete');
}

function writeResponse(
  ctx: InteractionContext,
  outcome: PersistOutcome,
  prefer: ReturnPreference,
  asked: 'create' | 'conditional create' | 'update' | 'delete',
): FhirResponse {
  if (outcome.kind === 'transaction') {
    return { status: 200, body: outcome.bundle, headers: {} };
  }
  if (outcome.kind === 'deleted') {
    return prefer === 'OperationOutcome'
      ? {
          status: 200,
          body: operationOutcome([issue('informational', 'Deleted.', undefined, 'information')]),
          headers: {},
        }
      : { status: 204, headers: {} };
  }
  const { resource, created } = outcome;
  const location = `${ctx.base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
  const response = resourceResponse(created ? 201 : 200, resource, location);
  // What the data dictionary did not keep: in the OperationOutcome asked for, and for a batch entry's
  // response.outcome; a representation is the stored resource itself, which shows what was kept.
  const notStored = outcome.notStored?.[0] ?? [];
  if (notStored.length > 0) {
    response.outcome = operationOutcome(notStored);
  }
  if (prefer === 'minimal') {
    delete response.body;
  } else if (prefer === 'OperationOutcome') {
    // A plain create that did not create is a Patient of a person already held: the registry keeps one
    // Patient per person, so it was updated (src/ingest/pseudonymise.ts).
    const text = created
      ? `Created.`
      : asked === 'conditional create'
        ? 'An existing resource matched; nothing was written.'
        : asked === 'create'
          ? 'This person is already registered; their Patient was updated and nothing was created.'
          : 'Updated.';
    response.body = operationOutcome([issue('informational', text, undefined, 'information'), ...notStored]);
  }
  return response;
}
