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

/**
 * The FhirError an error that reached an error handler stands for: itself if it is one, the client error
 * Express or body-parser raised (fhirErrorOfHttp), the 503 of an unavailable state database
 * (fhirErrorOfState); undefined for an internal error.
 */
export function fhirErrorOf(err: unknown): FhirError | undefined {
  return isFhirError(err) ? err : (fhirErrorOfHttp(err) ?? fhirErrorOfState(err));
}

/** Why a URL whose path does not decode is refused. */
export const URL_NOT_ENCODED = 'The URL is not validly percent-encoded.';

/**
 * The FhirError for a client error that Express or body-parser raised before a handler of ours ran: they
 * mark theirs with a 4xx `status`, and body-parser names what went wrong in `type`. Their messages are not
 * passed on: they quote the request (a path parameter, a charset). Undefined for any other error.
 */
export function fhirErrorOfHttp(err: unknown): FhirError | undefined {
  const { status, type } = (err ?? {}) as { status?: unknown; type?: unknown };
  if (typeof status !== 'number' || status < 400 || status > 499) {
    return undefined;
  }
  switch (type) {
    case 'entity.too.large':
      return errors.payloadTooLarge('The request body exceeds the maximum size this server accepts.');
    case 'parameters.too.many':
      return errors.payloadTooLarge('The form has more parameters than this server accepts.');
    case 'encoding.unsupported':
      return errors.unsupportedMediaType(
        'Content-Encoding is not supported on request bodies; send the body uncompressed.',
      );
    case 'charset.unsupported':
      return errors.unsupportedMediaType('The request body encoding is not supported; send UTF-8.');
    case 'entity.parse.failed':
    case 'querystring.parse.rangeError':
      return errors.badRequest('The request body could not be parsed as the type its Content-Type names.');
    case 'request.aborted':
    case 'request.size.invalid':
      return errors.badRequest('The request body could not be read completely.');
  }
  // Express's router: a path parameter that is not validly percent-encoded.
  return err instanceof URIError
    ? errors.badRequest(URL_NOT_ENCODED)
    : fail(status, 'invalid', 'The request could not be read as sent; check its URL, headers and body.');
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
