import type { Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity';

/**
 * What the portal adds to a renderer's response before sending it (renderers know nothing of the
 * citizen or of submission): the subject by the national id of the signed-in person, the time of
 * submission, status completed, and the Questionnaire's canonical with its version when the renderer
 * left the version out (Refero copies only `url`).
 */
export function completeAsPortal(
  rendered: QuestionnaireResponse,
  questionnaire: Questionnaire,
  nationalId: string,
  now: Date,
): QuestionnaireResponse {
  const canonical = rendered.questionnaire ?? questionnaire.url;
  return {
    ...rendered,
    status: 'completed',
    authored: rendered.authored ?? now.toISOString(),
    subject: { type: 'Patient', identifier: { system: preferredSystem.fnr, value: nationalId } },
    questionnaire: canonical?.includes('|') ? canonical : `${canonical}|${questionnaire.version}`,
  };
}
