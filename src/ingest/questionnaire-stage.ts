import type { OperationOutcomeIssue, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { errors } from '../fhir/outcomes';
import { checkQuestionnaireResponse, type QuestionnaireRegistry } from '../validation/questionnaire';
import { entryLocation, type IngestStage, type Write, type WriteEntry } from './write';

/**
 * The Questionnaire stage of the ingest pipeline (after base and profile validation, before exclusion):
 * - a QuestionnaireResponse must name a Questionnaire the server holds (or one written in the same
 *   transaction) and be valid against it; its scores are then recomputed and the response pinned to
 *   the Questionnaire's url|version;
 * - a Questionnaire must compile (enableWhen targets exist, expressions parse), so no response can
 *   later be judged against a broken form.
 * Any error refuses the whole write with 422.
 */
export function questionnaireStage(registry: QuestionnaireRegistry): IngestStage {
  return async (write: Write): Promise<Write> => {
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
        issues.push(...relocate(check.issues.filter(isError), prefix, 'QuestionnaireResponse'));
        entries.push(check.response ? { ...entry, resource: check.response } : entry);
      } else if (resource?.resourceType === 'Questionnaire') {
        const compiled = registry.compile(resource as Questionnaire);
        issues.push(...relocate(compiled.issues.filter(isError), prefix, 'Questionnaire'));
        entries.push(entry);
      } else {
        entries.push(entry);
      }
    }
    if (issues.length) {
      throw errors.unprocessable(issues);
    }
    return { ...write, entries };
  };
}

function isError(issue: OperationOutcomeIssue): boolean {
  return issue.severity === 'error' || issue.severity === 'fatal';
}

/** In a Bundle, expressions point at the entry's resource. */
function relocate(
  issues: OperationOutcomeIssue[],
  prefix: string | undefined,
  type: string,
): OperationOutcomeIssue[] {
  if (!prefix) {
    return issues;
  }
  return issues.map((i) => ({
    ...i,
    expression: i.expression?.map((e) => (e.startsWith(type) ? prefix + e.slice(type.length) : e)),
  }));
}
