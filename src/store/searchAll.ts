import { parseSearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { FhirStore, SearchResult } from './FhirStore';

/**
 * Every match of a search (`Type?params`), page by page, for batch commands that read more than one page
 * holds. Pages are fetched as they are consumed, so memory stays at one page.
 */
export async function* searchAll<T extends Resource>(
  store: FhirStore,
  query: string,
  pageSize = 1000,
): AsyncGenerator<T> {
  const request = parseSearchRequest<T>(query);
  let offset: number | undefined = 0;
  while (offset !== undefined) {
    const page: SearchResult<T> = await store.search({ ...request, count: pageSize, offset });
    yield* page.matches;
    offset = page.matches.length === 0 ? undefined : page.nextOffset;
  }
}
