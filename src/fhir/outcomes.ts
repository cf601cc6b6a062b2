import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { redactNationalIdsWith } from '../identity/nationalId';
import { isStateUnavailable } from '../state/unavailable';

/**
 * Every error a client can cause travels as a FhirError: an HTTP status plus the OperationOutcome the
 * client will see. Texts must be actionable and must never carry identifiers, stack traces or internals.
 */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome,
    /** Extra response headers, e.g. Retry-After on 503 or Allow on 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(outcome.issue?.[0]?.diagnostics ?? outcome.issue?.[0]?.details?.text ?? `HTTP ${status}`);
    this.name = 'FhirError';
  }
}

export type IssueCode = OperationOutcomeIssue['code'];

export function issue(
  code: IssueCode,
  text: string,
  expression?: string | string[],
  severity: OperationOutcomeIssue['severity'] = 'error',
): OperationOutcomeIssue {
  const result: OperationOutcomeIssue = { severity, code, details: { text } };
  if (expression !== undefined) {
    result.expression = Array.isArray(expression) ? expression : [expression];
  }
  return result;
}

/**
 * Every OperationOutcome the server sends is built here, and here no national id gets into one (DESIGN
 * §3): issues quote what the client sent (a search parameter's name, a Content-Type, a canonical URL, a
 * property the validator did not know), and whatever in their texts and paths is a national id to the one
 * detector (src/identity/nationalId.ts) is replaced.
 */
export function operationOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues.map(withoutNationalIds) };
}

function withoutNationalIds(found: OperationOutcomeIssue): OperationOutcomeIssue {
  const { details, diagnostics, expression, location } = found;
  const redact = (text: string): string => redactNationalIdsWith(text);
  return {
    ...found,
    ...(details?.text !== undefined && { details: { ...details, text: redact(details.text) } }),
    ...(diagnostics !== undefined && { diagnostics: redact(diagnostics) }),
    ...(expression !== undefined && { expression: expression.map(redact) }),
    ...(location !== undefined && { location: location.map(redact) }),
  };
}

function fail(status: number, code: IssueCode, text: string, expression?: string | string[]): FhirError {
  return new FhirError(status, operationOutcome([issue(code, text, expression)]));
}

export const errors = {
  badRequest: (text: string, expression?: string | string[]) => fail(400, 'invalid', text, expression),
  unauthorized: (text: string) =>
    new FhirError(401, operationOutcome([issue('login', text)]), { 'WWW-Authenticate': 'Bearer' }),
  forbidden: (text: string) => fail(403, 'forbidden', text),
  notFound: (text: string) => fail(404, 'not-found', text),
  methodNotAllowed: (text: string, allow: string[]) =>
    new FhirError(405, operationOutcome([issue('not-supported', text)]), { Allow: allow.join(', ') }),
  notAcceptable: (text: string) => fail(406, 'not-supported', text),
  conflict: (text: string) => fail(409, 'conflict', text),
  gone: (text: string) => fail(410, 'deleted', text),
  preconditionFailed: (text: string) => fail(412, 'conflict', text),
  payloadTooLarge: (text: string) => fail(413, 'too-long', text),
  unsupportedMediaType: (text: string) => fail(415, 'not-supported', text),
  unprocessable: (issues: OperationOutcomeIssue[]) => new FhirError(422, operationOutcome(issues)),
  tooManyRequests: (text: string, retryAfterSeconds: number) =>
    new FhirError(429, operationOutcome([issue('throttled', text)]), {
      'Retry-After': String(retryAfterSeconds),
    }),
  serviceUnavailable: (text: string, retryAfterSeconds: number) =>
    new FhirError(503, operationOutcome([issue('transient', text)]), {
      'Retry-After': String(retryAfterSeconds),
    }),
};

export function isFhirError(err: unknown): err is FhirError {
  return err instanceof FhirError;
}

/** How long a client is asked to wait when the façade's state database is unavailable. */
const STATE_RETRY_AFTER_SECONDS = 5;

/**
 * The FhirError for an error that is not one: 503 (transient) when the state database is unavailable
 * (src/state/unavailable.ts), otherwise undefined (an internal error).
 */
export function fhirErrorOfState(err: unknown): FhirError | undefined {
  return isStateUnavailable(err)
    ? errors.serviceUnavailable(
        "The registry's own database is not reachable at the moment; the request was not completed. Try again shortly.",
        STATE_RETRY_AFTER_SECONDS,
      )
    : undefined;
}
