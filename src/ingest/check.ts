import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { errors } from '../fhir/outcomes';
import type { NominatedProfile } from '../validation/profiles';
import type { IngestContext, IngestStage, Write } from './write';

/**
 * A validation step that reports rather than refuses: every issue it found, with the validator's
 * severity, and the write as it leaves the step (a QuestionnaireResponse with its scores, say). A write
 * runs it as a stage that refuses on its errors (`refusing`); `$validate` runs every check and answers
 * all their issues in one OperationOutcome (src/ingest/pipeline.ts).
 */
export type IngestCheck = (
  write: Write,
  ctx: IngestContext,
  options: CheckOptions,
) => Promise<Checked> | Checked;

export interface Checked {
  write: Write;
  issues: OperationOutcomeIssue[];
}

export interface CheckOptions {
  /** A write refuses; `$validate` reports, and may judge some things less strictly, as the HL7 validator does. */
  purpose: 'write' | 'validate';
  /** The profile `$validate` was asked to use instead of the one the server holds the type to. */
  profile?: NominatedProfile;
}

export function isError(found: OperationOutcomeIssue): boolean {
  return found.severity === 'error' || found.severity === 'fatal';
}

/** The check as a write's stage: a 422 listing its errors (warnings do not refuse), else the write it left. */
export function refusing(check: IngestCheck): IngestStage {
  const refuse = (checked: Checked): Write => {
    const failures = checked.issues.filter(isError);
    if (failures.length > 0) {
      throw errors.unprocessable(failures);
    }
    return checked.write;
  };
  // Synchronous checks stay synchronous stages.
  return (write, ctx) => {
    const checked = check(write, ctx, { purpose: 'write' });
    return checked instanceof Promise ? checked.then(refuse) : refuse(checked);
  };
}
