import { parseSearchRequest } from '@medplum/core';
import type { Questionnaire } from '@medplum/fhirtypes';
import { errors, issue } from '../../fhir/outcomes';
import type { FhirStore } from '../../store/FhirStore';
import { compareVersions, formatCanonical, parseCanonical, type Canonical } from './canonical';
import { compileQuestionnaire, type CompiledQuestionnaire } from './compile';

/** Where Questionnaires come from: the FHIR store in the server, a fixed list in tools and benchmarks. */
export interface QuestionnaireSource {
  /** Every Questionnaire with this canonical url (and this business version, when given). */
  find(url: string, version?: string): Promise<Questionnaire[]>;
}

export function storeQuestionnaireSource(store: FhirStore): QuestionnaireSource {
  return {
    async find(url, version) {
      const query: Record<string, string> = { url, _count: '100' };
      if (version) {
        query.version = version;
      }
      const result = await store.search(parseSearchRequest<Questionnaire>('Questionnaire', query));
      // The store matches url as a prefix-free uri; keep exact matches only.
      return result.matches.filter((q) => q.url === url && (!version || q.version === version));
    },
  };
}

export function listQuestionnaireSource(questionnaires: readonly Questionnaire[]): QuestionnaireSource {
  return {
    async find(url, version) {
      return questionnaires.filter((q) => q.url === url && (!version || q.version === version));
    },
  };
}

const CACHE_LIMIT = 200;

/**
 * Resolves a response's `questionnaire` canonical (`url|version`, or `url` for the latest version) to a
 * compiled Questionnaire. Compilations are cached by the stored resource's identity and version, so a
 * Questionnaire corrected by staff is recompiled while an unchanged one is compiled once.
 */
export class QuestionnaireRegistry {
  private readonly cache = new Map<string, CompiledQuestionnaire>();
  /** Questionnaires that are not stored resources (a fixed list) are cached by object identity. */
  private readonly byObject = new WeakMap<Questionnaire, CompiledQuestionnaire>();

  constructor(private readonly source: QuestionnaireSource) {}

  /**
   * @param reference the response's `questionnaire` value.
   * @param pending Questionnaires written in the same transaction, which take precedence.
   * @throws FhirError 422 (expression `QuestionnaireResponse.questionnaire`) for an unknown canonical.
   */
  async resolve(
    reference: string | undefined,
    pending: readonly Questionnaire[] = [],
  ): Promise<CompiledQuestionnaire> {
    if (!reference) {
      throw errors.unprocessable([
        issue(
          'required',
          'A QuestionnaireResponse must name its Questionnaire (url or url|version)',
          'QuestionnaireResponse.questionnaire',
        ),
      ]);
    }
    const canonical = parseCanonical(reference);
    const inBatch = pending.filter(
      (q) => q.url === canonical.url && (!canonical.version || q.version === canonical.version),
    );
    const candidates = inBatch.length ? inBatch : await this.source.find(canonical.url, canonical.version);
    const chosen = latest(candidates);
    if (!chosen) {
      throw errors.unprocessable([
        issue(
          'not-found',
          `The server holds no Questionnaire ${formatCanonical(canonical)}; load it first or name a known url|version`,
          'QuestionnaireResponse.questionnaire',
        ),
      ]);
    }
    return this.compile(chosen);
  }

  /** Compiles (or returns the cached compilation of) a Questionnaire. */
  compile(questionnaire: Questionnaire): CompiledQuestionnaire {
    const key = cacheKey(questionnaire);
    const hit = key ? this.cache.get(key) : this.byObject.get(questionnaire);
    if (hit) {
      return hit;
    }
    const compiled = compileQuestionnaire(questionnaire);
    if (!key) {
      this.byObject.set(questionnaire, compiled);
    } else {
      if (this.cache.size >= CACHE_LIMIT) {
        this.cache.delete(this.cache.keys().next().value as string);
      }
      this.cache.set(key, compiled);
    }
    return compiled;
  }
}

/** Stored resources are keyed by id and meta.versionId; anything else is compiled afresh. */
function cacheKey(q: Questionnaire): string | undefined {
  return q.id && q.meta?.versionId ? `${q.url}|${q.version ?? ''}|${q.id}|${q.meta.versionId}` : undefined;
}

function latest(candidates: readonly Questionnaire[]): Questionnaire | undefined {
  let best: Questionnaire | undefined;
  for (const q of candidates) {
    if (!best) {
      best = q;
      continue;
    }
    const order = compareVersions(q.version ?? '', best.version ?? '');
    if (order > 0 || (order === 0 && (q.meta?.lastUpdated ?? '') > (best.meta?.lastUpdated ?? ''))) {
      best = q;
    }
  }
  return best;
}

export type { Canonical };
