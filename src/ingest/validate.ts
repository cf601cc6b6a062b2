import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { errors } from '../fhir/outcomes';
import { baseValidationIssues, checkResourceType } from '../validation/base';
import type { IngestStage, Write } from './write';

/**
 * Validates every resource of a write against the FHIR R4 base definitions, all entries at once so
 * that a transaction reports every problem in one OperationOutcome. In a multi-entry write the
 * expressions are anchored at the Bundle entry (`Bundle.entry[2].resource.status`).
 */
export const validateBase: IngestStage = (write: Write) => {
  const issues: OperationOutcomeIssue[] = [];
  const multi = write.entries.length > 1;
  write.entries.forEach((entry, index) => {
    if (entry.resource === undefined) {
      return;
    }
    const anchor = multi ? `Bundle.entry[${index}].resource` : undefined;
    checkResourceType(entry.resource, entry.resourceType, anchor ? `${anchor}.resourceType` : 'resourceType');
    for (const found of baseValidationIssues(entry.resource)) {
      issues.push(
        anchor ? { ...found, expression: found.expression?.map((e) => reanchor(e, anchor)) } : found,
      );
    }
  });
  if (issues.length > 0) {
    throw errors.unprocessable(issues);
  }
  return write;
};

/** "Patient.name[0].use" → "Bundle.entry[3].resource.name[0].use". */
function reanchor(expression: string, anchor: string): string {
  const dot = expression.indexOf('.');
  return dot < 0 ? anchor : anchor + expression.slice(dot);
}
