/**
 * The state database cannot be used right now (STATE=postgres): it is unreachable, its connection was lost,
 * or a statement gave up at `lock_timeout`/`statement_timeout` (src/state/index.ts, pgConnection). A
 * transient condition, which clients get as 503 with Retry-After (src/fhir/router.ts) rather than as an
 * internal error; the request did not complete.
 */
export class StateUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the state database is not available: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StateUnavailableError';
  }
}

/**
 * SQLSTATE classes of a condition that passes: connection exception (08), insufficient resources (53),
 * operator intervention (57: a terminated backend, a cancelled statement), lock not available (55P03),
 * serialization failure and deadlock (40001, 40P01).
 */
const TRANSIENT = /^(08|53|57|55P03$|40001$|40P01$)/;

/** A system call's error (ECONNREFUSED, ECONNRESET, EPIPE…); no SQLSTATE class begins with E. */
const NETWORK = /^E[A-Z]+$/;

/**
 * The error a state call should throw for `err`: a StateUnavailableError when it is transient. An error
 * without a code comes from the client, not the server (a dropped connection, a timeout).
 */
export function stateError(err: unknown): unknown {
  if (err instanceof StateUnavailableError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code !== 'string' || NETWORK.test(code) || TRANSIENT.test(code)
    ? new StateUnavailableError(err)
    : err;
}

export function isStateUnavailable(err: unknown): err is StateUnavailableError {
  return err instanceof StateUnavailableError;
}
