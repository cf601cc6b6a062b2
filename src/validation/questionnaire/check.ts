import type { OperationOutcomeIssue, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { isFhirError, issue } from '../../fhir/outcomes';
import type { QuestionnaireRegistry } from './registry';
import { applyScores } from './scoring';
import { validateQuestionnaireResponse } from './validate';

export interface QuestionnaireCheck {
  /** Errors and warnings against the Questionnaire; errors make the response unacceptable. */
  issues: OperationOutcomeIssue[];
  /** The response with scores recomputed and `questionnaire` pinned; absent when there were errors. */
  response?: QuestionnaireResponse;
  /** True when the Questionnaire could not be resolved (none named, or none held), so nothing was checked. */
  unresolved?: true;
}

/**
 * Everything the server checks and computes for a QuestionnaireResponse against its Questionnaire:
 * resolve the canonical, validate, recompute the scores. Used by the ingest stage (which refuses on
 * errors) and by `$validate` (which reports the issues and stores nothing).
 */
export async function checkQuestionnaireResponse(
  registry: QuestionnaireRegistry,
  response: QuestionnaireResponse,
  pending: readonly Questionnaire[] = [],
): Promise<QuestionnaireCheck> {
  if (response.questionnaire?.startsWith('#')) {
    return { issues: [containedQuestionnaire(response.questionnaire)] };
  }
  let compiled;
  try {
    compiled = await registry.resolve(response.questionnaire, pending);
  } catch (err) {
    if (isFhirError(err)) {
      return { issues: err.outcome.issue ?? [], unresolved: true };
    }
    throw err;
  }
  const issues = validateQuestionnaireResponse(compiled, response);
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    return { issues };
  }
  const scored = applyScores(compiled, response);
  return { issues: [...issues, ...scored.issues], response: scored.response };
}

/**
 * A response that names a Questionnaire it carries itself (`questionnaire: "#id"`) is refused, also by
 * `$validate`: the registry takes answers only to its own Questionnaires, because its data dictionary,
 * scores and reports are defined per registry Questionnaire version (the response is pinned to its
 * url|version). Accepting a contained copy only when it equals ours would buy the sender nothing (the copy
 * is never stored) and fail on any harmless difference a renderer makes; naming the canonical is one line.
 */
function containedQuestionnaire(reference: string): OperationOutcomeIssue {
  return issue(
    'not-supported',
    `The registry takes answers only to its own Questionnaires: name one by its canonical url|version (as ` +
      `Questionnaire.url and .version give it) instead of the contained Questionnaire '${reference}'`,
    'QuestionnaireResponse.questionnaire',
  );
}
