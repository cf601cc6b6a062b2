import { parseSearchRequest } from '@medplum/core';
import type { Resource, ResourceType } from '@medplum/fhirtypes';
import type { FhirStore, SearchResult } from '../store/FhirStore';

/** Pages of this size are read one at a time, so memory stays flat however large the store is. */
const PAGE = 1000;

/** Every current resource of a type in the store, in the store's order (staff see all units). */
export async function* storeStream(store: FhirStore, type: ResourceType): AsyncIterable<Resource> {
  let offset: number | undefined = 0;
  while (offset !== undefined) {
    const page: SearchResult = await store.search(
      parseSearchRequest(type, { _count: String(PAGE), _offset: String(offset), _total: 'none' }),
    );
    yield* page.matches;
    offset = page.nextOffset;
  }
}
