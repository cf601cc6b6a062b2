import type { OperationOutcomeIssue, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { isError, refusing, type IngestCheck } from './check';
import {
  checkQuestionnaireResponse,
  mergeRepeatedAnswers,
  type QuestionnaireRegistry,
} from '../validation/questionnaire';
import { entryLocation, type IngestStage, type Write, type WriteEntry } from './write';

/**
 * The Questionnaire check of the ingest pipeline (after base and profile validation, before exclusion):
 * - a QuestionnaireResponse must name a Questionnaire the server holds (or one written in the same
 *   transaction) and be valid against it; its scores are then recomputed and the response pinned to
 *   the Questionnaire's url|version; what scoring reports (a client's answer to a calculated item
 *   replaced, an expression that failed) travels with the entry as warnings (WriteEntry.notStored);
 * - a Questionnaire must compile (enableWhen targets exist, expressions parse), so no response can
 *   later be judged against a broken form.
 * A write is refused (422) on any error. For `$validate` a Questionnaire that cannot be resolved is a
 * warning (a hint for example.org), as the HL7 validator has it: the response may be valid, it just cannot
 * be checked against it. A contained Questionnaire (`#id`) is refused by both (check.ts says why).
 */
export function questionnaireCheck(registry: QuestionnaireRegistry): IngestCheck {
  return async (write, _ctx, options) => {
    const pending = write.entries
      .map((e) => e.resource)
      .filter((r): r is Questionnaire => r?.resourceType === 'Questionnaire');
    const issues: OperationOutcomeIssue[] = [];
    const entries: WriteEntry[] = [];
    for (const [index, entry] of write.entries.entries()) {
      const location = entryLocation(write, index);
      const prefix = location === undefined ? undefined : `${location}.resource`;
      const resource = entry.method === 'DELETE' ? undefined : entry.resource;
      if (resource?.resourceType === 'QuestionnaireResponse') {
        const check = await checkQuestionnaireResponse(registry, resource as QuestionnaireResponse, pending);
        const found =
          check.unresolved && options.purpose === 'validate'
            ? check.issues.map((i): OperationOutcomeIssue => ({
                ...i,
                severity: unresolvedSeverity(resource.questionnaire),
              }))
            : check.issues;
        const relocated = relocate(found, prefix, 'QuestionnaireResponse');
        issues.push(...relocated);
        // A write that goes ahead carries the warnings to its answer (WriteEntry.notStored).
        const warnings = relocated.filter((i) => !isError(i));
        entries.push(
          check.response
            ? {
                ...entry,
                resource: check.response,
                ...(warnings.length ? { notStored: [...(entry.notStored ?? []), ...warnings] } : {}),
              }
            : entry,
        );
      } else if (resource?.resourceType === 'Questionnaire') {
        const compiled = registry.compile(resource as Questionnaire);
        issues.push(...relocate(compiled.issues, prefix, 'Questionnaire'));
        entries.push(entry);
      } else {
        entries.push(entry);
      }
    }
    return { write: { ...write, entries }, issues };
  };
}

/**
 * How `$validate` grades a Questionnaire it cannot resolve, as the HL7 validator (core 6.7) does: a hint
 * (information) for an example.org canonical, which names no real form, a warning for any other.
 */
function unresolvedSeverity(canonical: string | undefined): OperationOutcomeIssue['severity'] {
  return canonical && /^https?:\/\/example\.org\//.test(canonical) ? 'information' : 'warning';
}

/** The Questionnaire check as a write's stage: 422 with every error. */
export function questionnaireStage(registry: QuestionnaireRegistry): IngestStage {
  return refusing(questionnaireCheck(registry));
}

/**
 * Joins a repeating question that a renderer split over sibling items (helsenorge Refero's «Legg til»)
 * into one item, before anything validates the response (src/validation/questionnaire/repeated-answers.ts).
 * It must run before base validation, whose qrs-2 refuses the split, so every later stage, `$validate`
 * included, judges, scores and stores the merged response. A response whose Questionnaire cannot be
 * resolved here is passed on unchanged: the Questionnaire stage reports why, after base validation.
 */
export function repeatedAnswersStage(registry: QuestionnaireRegistry): IngestStage {
  return async (write: Write): Promise<Write> => {
    const responses = write.entries.filter(
      (e) => e.method !== 'DELETE' && e.resource?.resourceType === 'QuestionnaireResponse',
    );
    if (responses.length === 0) {
      return write;
    }
    const pending = write.entries
      .map((e) => e.resource)
      .filter((r): r is Questionnaire => r?.resourceType === 'Questionnaire');
    let changed = false;
    const entries: WriteEntry[] = [];
    for (const entry of write.entries) {
      const response = responses.includes(entry) ? (entry.resource as QuestionnaireResponse) : undefined;
      const merged = response && (await mergeWhenResolvable(registry, response, pending));
      changed ||= merged !== response;
      entries.push(merged && merged !== response ? { ...entry, resource: merged } : entry);
    }
    return changed ? { ...write, entries } : write;
  };
}

async function mergeWhenResolvable(
  registry: QuestionnaireRegistry,
  response: QuestionnaireResponse,
  pending: readonly Questionnaire[],
): Promise<QuestionnaireResponse> {
  let compiled;
  try {
    compiled = await registry.resolve(response.questionnaire, pending);
  } catch {
    // Not yet validated input (an unknown or malformed canonical, a broken Questionnaire in the same
    // transaction): the later stages refuse it with the proper message.
    return response;
  }
  return mergeRepeatedAnswers(compiled, response);
}

/** In a Bundle, expressions point at the entry's resource. */
function relocate(
  issues: readonly OperationOutcomeIssue[],
  prefix: string | undefined,
  type: string,
): OperationOutcomeIssue[] {
  if (!prefix) {
    return [...issues];
  }
  return issues.map((i) => ({
    ...i,
    expression: i.expression?.map((e) => (e.startsWith(type) ? prefix + e.slice(type.length) : e)),
  }));
}
