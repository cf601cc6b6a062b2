import { parseSearchRequest } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import { isFhirError } from '../fhir/outcomes';
import type { FhirStore, SearchResult } from '../store/FhirStore';
import { TASK_IDENTIFIER_SYSTEM } from './task';

/**
 * Reading and changing follow-up Tasks in the clinical store. Several writers change one Task (the
 * scheduler as its episode changes, the dispatcher as it sends, an answer closing it), so every change is
 * made on the version read (If-Match) and made again on a newer one if another came between.
 */
export async function readTask(store: FhirStore, id: string): Promise<Task | undefined> {
  try {
    return await store.read<Task>('Task', id);
  } catch (err) {
    if (isFhirError(err) && (err.status === 404 || err.status === 410)) return undefined;
    throw err;
  }
}

/**
 * Applies `change` to the stored Task (undefined when there is none) and writes what it returns, unless it
 * returns undefined (nothing to change). Returns the Task as stored afterwards.
 */
export async function changeTask(
  store: FhirStore,
  id: string,
  change: (current: Task | undefined) => Task | undefined,
): Promise<Task | undefined> {
  for (let attempt = 0; ; attempt++) {
    const current = await readTask(store, id);
    const next = change(current);
    if (next === undefined) return current;
    try {
      const written = await store.update<Task>(
        { ...next, id },
        current?.meta?.versionId === undefined ? {} : { ifMatch: current.meta.versionId },
      );
      return written.resource;
    } catch (err) {
      // Another writer came first (412), created it meanwhile (409) or erased it (404, 410): read again and
      // decide anew.
      if (attempt < 5 && isFhirError(err) && [404, 409, 410, 412].includes(err.status)) continue;
      throw err;
    }
  }
}

/** Every follow-up Task matching the query (status, for …), page by page. */
export async function* followUpTasks(store: FhirStore, query: Record<string, string>): AsyncGenerator<Task> {
  let offset: number | undefined = 0;
  while (offset !== undefined) {
    const page: SearchResult<Task> = await store.search(
      parseSearchRequest<Task>('Task', {
        ...query,
        identifier: `${TASK_IDENTIFIER_SYSTEM}|`,
        _count: '500',
        _offset: String(offset),
      }),
    );
    yield* page.matches;
    offset = page.matches.length === 0 ? undefined : page.nextOffset;
  }
}
