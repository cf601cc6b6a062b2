import type { Questionnaire } from '@medplum/fhirtypes';
import type { QuestionnaireSource } from '../validation/questionnaire';
import type { Write } from './write';

/** How long a looked-up Questionnaire is trusted without asking the store again (see below). */
const QUESTIONNAIRE_CACHE_MS = 30_000;

export interface CachedQuestionnaireSource extends QuestionnaireSource {
  /** Forgets everything: call after any write that touches a Questionnaire. */
  invalidate(): void;
}

/**
 * Remembers which Questionnaires the store holds for a url (and version), so a QuestionnaireResponse
 * does not cost a search of the store on every write (against HAPI, a round trip per response).
 *
 * Exact for this server: the ingest pipeline invalidates the cache on every write that touches a
 * Questionnaire (create, update, delete, in any channel), and an answer that found nothing is never
 * kept, so a Questionnaire loaded just now is found at once. What this process cannot see — a
 * Questionnaire written by another server instance on the same store — is picked up within maxAgeMs;
 * until then a response naming only the url is pinned to the version known here, which it is valid
 * against.
 */
export function cachedQuestionnaireSource(
  source: QuestionnaireSource,
  maxAgeMs = QUESTIONNAIRE_CACHE_MS,
  now: () => number = Date.now,
): CachedQuestionnaireSource {
  const cache = new Map<string, { at: number; found: Promise<Questionnaire[]> }>();
  return {
    find(url, version) {
      const key = `${url}|${version ?? ''}`;
      const hit = cache.get(key);
      if (hit && now() - hit.at < maxAgeMs) {
        return hit.found;
      }
      const found = source.find(url, version);
      const entry = { at: now(), found };
      cache.set(key, entry);
      // Failures and empty answers are not remembered.
      const forget = () => {
        if (cache.get(key) === entry) cache.delete(key);
      };
      found.then((list) => list.length === 0 && forget(), forget);
      return found;
    },
    invalidate() {
      cache.clear();
    },
  };
}

/** Whether a write creates, changes or deletes a Questionnaire. */
export function touchesQuestionnaire(write: Write): boolean {
  return write.entries.some((entry) => entry.resourceType === 'Questionnaire');
}
