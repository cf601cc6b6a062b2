import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { checkResourceType } from '../validation/base';
import type { WriteEntry } from '../ingest/write';
import { parseETag, type FhirResponse, type ReturnPreference } from './http';
import { checkEntryShape } from './bodyGuard';
import { classify } from './classify';
import { errors, FhirError, fhirErrorOfState, isFhirError, issue, operationOutcome } from './outcomes';
import { perform, searchQuery, type InteractionContext } from './interactions';
import { authorise } from '../auth/matrix';
import { checkQueryLimits } from './queryLimits';
import { isFhirId, parseReference } from './reference';
import { isResourceType } from './resourceTypes';
import { planSearch } from './search';

/**
 * Batch and transaction Bundles posted to the base. A batch runs each entry as an independent
 * interaction (a failing entry becomes an OperationOutcome in its response); a transaction becomes one
 * Write that the ingest pipeline validates and persists all or nothing.
 */

export async function processBundle(
  ctx: InteractionContext,
  body: unknown,
  prefer: ReturnPreference,
): Promise<FhirResponse> {
  checkResourceType(body, 'Bundle');
  const bundle = body as Bundle;
  const limit = ctx.maxBundleEntries;
  if (limit !== undefined && Array.isArray(bundle.entry) && bundle.entry.length > limit) {
    throw errors.payloadTooLarge(
      `The Bundle has ${bundle.entry.length} entries; this server accepts at most ${limit} per batch or transaction. Split it.`,
    );
  }
  if (bundle.type === 'batch') {
    return { status: 200, body: withFullUrls(ctx.base, await batch(ctx, bundle, prefer)), headers: {} };
  }
  if (bundle.type === 'transaction') {
    return { status: 200, body: withFullUrls(ctx.base, await transaction(ctx, bundle)), headers: {} };
  }
  throw errors.badRequest(
    'Only Bundles of type batch or transaction can be posted to the base.',
    'Bundle.type',
  );
}

/** Each response entry's fullUrl: the absolute URL of the resource it wrote or read (R4 requires an absolute
 * URL there; the stores give a relative one or none), taken from its resource or else its Location. */
function withFullUrls(base: string, bundle: Bundle): Bundle {
  return {
    ...bundle,
    entry: bundle.entry?.map(({ fullUrl: _relative, ...entry }) => {
      const location = entry.response?.location
        ? parseReference(entry.response.location, { ownBases: [base] })
        : undefined;
      const target =
        entry.resource?.id !== undefined
          ? entry.resource
          : location?.ok && location.reference.kind === 'literal'
            ? location.reference
            : undefined;
      return target ? { fullUrl: `${base}/${target.resourceType}/${target.id}`, ...entry } : entry;
    }),
  };
}

interface EntryTarget {
  method: string;
  segments: string[];
  params: URLSearchParams;
}

const ENTRY_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH']);

/** entry.request as method, path segments and query; absolute URLs must point at this server's base.
 * 400 for an entry of the wrong shape (src/fhir/bodyGuard.ts) or without a usable method and url. */
function entryTarget(ctx: InteractionContext, entry: unknown, index: number): EntryTarget {
  checkEntryShape(entry, `Bundle.entry[${index}]`);
  const where = `Bundle.entry[${index}].request`;
  const request = (entry as BundleEntry).request as { method?: unknown; url?: unknown } | undefined;
  const method = request?.method;
  const given = request?.url;
  if (typeof method !== 'string' || typeof given !== 'string' || given === '') {
    throw errors.badRequest('Every entry needs request.method and request.url (strings).', where);
  }
  if (!ENTRY_METHODS.has(method)) {
    throw errors.badRequest(
      `request.method must be one of ${[...ENTRY_METHODS].join(', ')}.`,
      `${where}.method`,
    );
  }
  let url = given;
  if (/^https?:\/\//.test(url)) {
    if (!url.startsWith(`${ctx.base}/`)) {
      throw errors.badRequest('request.url points outside this server.', `${where}.url`);
    }
    url = url.slice(ctx.base.length + 1);
  }
  const question = url.indexOf('?');
  const path = question < 0 ? url : url.slice(0, question);
  const params = new URLSearchParams(question < 0 ? '' : url.slice(question + 1));
  checkQueryLimits(params);
  let segments: string[];
  try {
    segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw errors.badRequest('request.url is not a valid URL.', `${where}.url`);
  }
  return { method, segments, params };
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`.trim();
}

/** Each entry on its own: a malformed or failing entry gets its own status and outcome, the others go through. */
async function batch(ctx: InteractionContext, bundle: Bundle, prefer: ReturnPreference): Promise<Bundle> {
  const entries: BundleEntry[] = [];
  for (const [index, entry] of (bundle.entry ?? []).entries()) {
    try {
      const target = entryTarget(ctx, entry, index);
      const what = classify(target.method, target.segments, ctx.operations ?? []);
      authorise(ctx.principal, what);
      const response = await perform(ctx, {
        request: { what, params: target.params, header: () => undefined, body: () => entry.resource },
        ifMatch: entry.request?.ifMatch ? parseETag(entry.request.ifMatch, 'request.ifMatch') : undefined,
        ifNoneExist: entry.request?.ifNoneExist,
        prefer: prefer === 'minimal' ? 'minimal' : 'representation',
      });
      entries.push({
        resource: response.body,
        response: {
          status: statusLine(response.status),
          location: response.headers.Location,
          etag: response.headers.ETag,
          lastModified: response.body?.meta?.lastUpdated,
          outcome: response.outcome,
        },
      });
    } catch (err) {
      // Earlier entries may have been committed: an unexpected error answers this entry alone.
      const failure = isFhirError(err)
        ? err
        : (fhirErrorOfState(err) ??
          new FhirError(
            500,
            operationOutcome([issue('exception', 'An internal error occurred in this entry.')]),
          ));
      entries.push({ response: { status: statusLine(failure.status), outcome: failure.outcome } });
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry: entries };
}

async function transaction(ctx: InteractionContext, bundle: Bundle): Promise<Bundle> {
  const entries = (bundle.entry ?? []).map((entry, index) => transactionEntry(ctx, entry, index));
  const outcome = await ctx.ingest.run(
    { transaction: true, entries },
    { principal: ctx.principal, requestId: ctx.requestId, base: ctx.base, intents: ctx.intents },
  );
  if (outcome.kind !== 'transaction') {
    throw new Error('The pipeline did not run the write as a transaction');
  }
  const notStored = outcome.notStored;
  if (!notStored) {
    return outcome.bundle;
  }
  // What the data dictionary did not keep of each entry, as that entry's response.outcome.
  return {
    ...outcome.bundle,
    entry: outcome.bundle.entry?.map((entry, index) =>
      notStored[index]?.length && entry.response
        ? { ...entry, response: { ...entry.response, outcome: operationOutcome(notStored[index]) } }
        : entry,
    ),
  };
}

/** One entry of a transaction as a write; any malformed entry refuses the whole transaction (400). */
function transactionEntry(ctx: InteractionContext, entry: BundleEntry, index: number): WriteEntry {
  const where = `Bundle.entry[${index}]`;
  const { method, segments, params } = entryTarget(ctx, entry, index);
  const [type, id, ...rest] = segments;
  if (type === undefined || !isResourceType(type) || rest.length > 0 || (id !== undefined && !isFhirId(id))) {
    throw errors.badRequest('request.url must be Type, Type/id or Type?query.', `${where}.request.url`);
  }
  // Every transaction entry carries a fullUrl, so that references to it can be resolved.
  const fullUrl = entry.fullUrl ?? `urn:uuid:${randomUUID()}`;
  const ifMatch = entry.request?.ifMatch
    ? parseETag(entry.request.ifMatch, `${where}.request.ifMatch`)
    : undefined;
  const resource = entry.resource as Resource | undefined;
  const needResource = (): Resource => {
    if (!resource) {
      throw errors.badRequest(`A ${method} entry needs a resource.`, `${where}.resource`);
    }
    return resource;
  };
  switch (method) {
    case 'POST': {
      if (id !== undefined || params.size > 0) {
        throw errors.badRequest(
          'A POST entry targets a type: request.url is the resource type.',
          `${where}.request.url`,
        );
      }
      const body = { ...needResource() };
      delete body.id;
      return { method, resourceType: type, resource: body, ifNoneExist: entry.request?.ifNoneExist, fullUrl };
    }
    case 'PUT': {
      const body = needResource();
      if (id === undefined) {
        const query = searchQuery(params);
        if (query === '') {
          throw errors.badRequest('A PUT entry needs an id or a search query.', `${where}.request.url`);
        }
        planSearch(type, params);
        return { method, resourceType: type, resource: body, conditionalQuery: query, ifMatch, fullUrl };
      }
      if (body.id !== id) {
        throw errors.badRequest(
          'The resource id does not match the id in request.url.',
          `${where}.resource.id`,
        );
      }
      return { method, resourceType: type, id, resource: body, ifMatch, fullUrl };
    }
    case 'DELETE':
      if (id === undefined) {
        throw errors.badRequest(
          'Conditional delete is not supported; DELETE needs Type/id.',
          `${where}.request.url`,
        );
      }
      return { method, resourceType: type, id, fullUrl };
  }
  throw errors.badRequest(
    `A transaction entry may be POST, PUT or DELETE, not ${method}; use a batch for reads.`,
    `${where}.request.method`,
  );
}
