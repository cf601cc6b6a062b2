import { parseSearchRequest } from '@medplum/core';
import { isFhirError } from '../fhir/outcomes';
import type { FhirStore } from '../store/FhirStore';
import type { IntentTarget } from './journal';

/**
 * Whether a write reached its target (src/ingest/journal.ts): the id of the target resource when it has
 * a version from `since` on, else undefined. A conditional target is found by its query first. Writes
 * about one person are serialised (the person locks), so a version since the write's intent is the write's.
 */
export async function targetLanded(
  store: FhirStore,
  target: IntentTarget,
  since: string,
): Promise<string | undefined> {
  const ids =
    target.id !== undefined
      ? [target.id]
      : target.query !== undefined
        ? (await store.search(parseSearchRequest(`${target.type}?${target.query}`))).matches.map(
            (r) => r.id as string,
          )
        : [];
  for (const id of ids) {
    try {
      const history = await store.history(target.type, id, { since, count: 1 });
      if (history.entries.length > 0) {
        return id;
      }
    } catch (err) {
      if (!(isFhirError(err) && (err.status === 404 || err.status === 410))) {
        throw err;
      }
    }
  }
  return undefined;
}
