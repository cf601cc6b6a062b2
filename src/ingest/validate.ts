import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { baseIssues, checkResourceType } from '../validation/base';
import { refusing, type IngestCheck } from './check';
import { entryLocation, issueAtEntry, type Write } from './write';

/**
 * Checks every resource of a write against the FHIR R4 base definitions, all entries at once so
 * that a transaction reports every problem in one OperationOutcome. In a transaction the
 * expressions are anchored at the Bundle entry (`Bundle.entry[2].resource.status`).
 */
export const checkBase: IngestCheck = (write: Write) => {
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
    for (const found of baseIssues(entry.resource)) {
      issues.push(issueAtEntry(found, write, index));
    }
  });
  return { write, issues };
};

/** The base check as a write's stage: 422 with every error. */
export const validateBase = refusing(checkBase);
