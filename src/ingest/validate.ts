import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { errors } from '../fhir/outcomes';
import { baseValidationIssues, checkResourceType } from '../validation/base';
import { entryLocation, issueAtEntry, type IngestStage, type Write } from './write';

/**
 * Validates every resource of a write against the FHIR R4 base definitions, all entries at once so
 * that a transaction reports every problem in one OperationOutcome. In a transaction the
 * expressions are anchored at the Bundle entry (`Bundle.entry[2].resource.status`).
 */
export const validateBase: IngestStage = (write: Write) => {
  const issues: OperationOutcomeIssue[] = [];
  write.entries.forEach((entry, index) => {
    if (entry.resource === undefined) {
      return;
    }
    const location = entryLocation(write, index);
    checkResourceType(
      entry.resource,
      entry.resourceType,
      location ? `${location}.resource.resourceType` : 'resourceType',
    );
    for (const found of baseValidationIssues(entry.resource)) {
      issues.push(issueAtEntry(found, write, index));
    }
  });
  if (issues.length > 0) {
    throw errors.unprocessable(issues);
  }
  return write;
};
