import { errors } from './outcomes';

/**
 * Limits on a request's search or operation parameters (query string, `_search` form body, a batch
 * entry's request.url), checked at the door before any parameter is parsed, so that no parser sees
 * tens of thousands of values or a megabyte-long value. Real FHIR searches are far below them.
 */

/** Distinct parameter names in one request. */
const MAX_PARAMETERS = 64;
/** Values of one parameter, counting repeats (`a=1&a=2`) and comma-separated alternatives (`a=1,2`). */
const MAX_VALUES_PER_PARAMETER = 100;
/** Characters of one parameter name or value. */
const MAX_PARAMETER_LENGTH = 2048;

/** 400 OperationOutcome naming the limit a request's parameters exceed. */
export function checkQueryLimits(params: URLSearchParams): void {
  const counts = new Map<string, number>();
  for (const [name, value] of params) {
    if (name.length > MAX_PARAMETER_LENGTH || value.length > MAX_PARAMETER_LENGTH) {
      throw errors.badRequest(
        `A parameter name or value is longer than ${MAX_PARAMETER_LENGTH} characters, the limit of this server.`,
        quotable(name),
      );
    }
    let count = (counts.get(name) ?? 0) + 1;
    for (let i = value.indexOf(','); i >= 0; i = value.indexOf(',', i + 1)) count++;
    if (count > MAX_VALUES_PER_PARAMETER) {
      throw errors.badRequest(
        `A parameter (${quotable(name) ?? 'unnamed'}) has more than ${MAX_VALUES_PER_PARAMETER} values, the limit of this server.`,
        quotable(name),
      );
    }
    counts.set(name, count);
    if (counts.size > MAX_PARAMETERS) {
      throw errors.badRequest(
        `The request has more than ${MAX_PARAMETERS} distinct parameters, the limit of this server.`,
      );
    }
  }
}

/** A parameter name as it may appear in an answer: only one shaped like a search parameter (never data). */
function quotable(name: string): string | undefined {
  return /^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$/.test(name) ? name : undefined;
}
