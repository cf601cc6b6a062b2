import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../fhir/outcomes';

/**
 * What the data dictionary (src/dictionary) did not keep of a written resource, as the warnings the
 * sender gets (DESIGN §3.1): one issue per element path, with the reason and never the value. They
 * travel with the write entry (WriteEntry.notStored) to the response: in the OperationOutcome body of a
 * write with `Prefer: return=OperationOutcome`, and in `Bundle.entry.response.outcome` of batch and
 * transaction responses.
 */
export function notStoredIssues(byPath: ReadonlyMap<string, string>): OperationOutcomeIssue[] {
  return [...byPath].map(([path, reason]) => issue('not-supported', reason, path, 'warning'));
}
