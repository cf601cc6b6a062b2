import { evalFhirPath, getSearchParameters, parseSearchRequest, type SearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { literalKeyOf } from '../fhir/reference';
import type { FhirStore, SearchResult } from './FhirStore';

/**
 * THE way to read everything a search's filters match, for whoever reads the whole registry (export,
 * study view streams, statistics, the annual report, coverage, the Nordic dataset): the store's keyset
 * `scan` where it has one (the embedded store: each page one short query by key, so memory stays flat,
 * no page costs more than the one before it, and writes go on between pages), else its searches page by
 * page (HAPI, which pages by its own search cache). Only the request's type and filters count: no
 * sorting, paging or includes.
 *
 * What a reader sees while writes go on: every resource that matches from before the read to after it
 * exactly once, as it was when its page was read; one created during the read may or may not come; one
 * deleted or erased before its page was read does not come.
 */
export function scanStored(
  store: FhirStore,
  request: SearchRequest | string,
): AsyncIterable<Resource | Buffer> {
  const parsed = typeof request === 'string' ? parseSearchRequest(request) : request;
  const filtersOnly: SearchRequest = { resourceType: parsed.resourceType, filters: parsed.filters ?? [] };
  return store.scan !== undefined ? store.scan(filtersOnly) : searchPages(store, filtersOnly);
}

/** scanStored, each resource parsed (for readers that look into them). */
export async function* scanResources<T extends Resource = Resource>(
  store: FhirStore,
  request: SearchRequest | string,
): AsyncIterable<T> {
  for await (const item of scanStored(store, request)) {
    yield (Buffer.isBuffer(item) ? JSON.parse(item.toString('utf8')) : item) as T;
  }
}

/**
 * What the reference search parameter `param` of every match points at, as `Type/id` (literal references
 * only), for readers that want whom the matches are about rather than the matches (a study's cohort): the
 * store's reference index where it has one, else each match read and the parameter's expression
 * evaluated as the store indexes it.
 */
export async function* scanReferences(
  store: FhirStore,
  request: SearchRequest,
  param: string,
): AsyncIterable<string> {
  const filtersOnly: SearchRequest = { resourceType: request.resourceType, filters: request.filters ?? [] };
  if (store.scanReferences !== undefined) {
    yield* store.scanReferences(filtersOnly, param);
    return;
  }
  const expression = getSearchParameters(request.resourceType)?.[param]?.expression;
  if (expression === undefined) throw new Error(`${request.resourceType} has no search parameter ${param}`);
  for await (const resource of scanResources(store, filtersOnly)) {
    for (const value of evalFhirPath(expression, resource)) {
      const reference = (value as { reference?: unknown } | null)?.reference;
      const key = typeof reference === 'string' ? literalKeyOf(reference) : undefined;
      if (key !== undefined) yield key;
    }
  }
}

/** Matches per page when a store without `scan` is read through its searches. */
const PAGE = 1000;

async function* searchPages(store: FhirStore, request: SearchRequest): AsyncIterable<Resource> {
  for (let offset: number | undefined = 0; offset !== undefined;) {
    const page: SearchResult = await store.search({ ...request, count: PAGE, offset, total: 'none' });
    yield* page.matches;
    offset = page.matches.length === 0 ? undefined : page.nextOffset;
  }
}
