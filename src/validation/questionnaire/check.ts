import type { OperationOutcomeIssue, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { isFhirError } from '../../fhir/outcomes';
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
