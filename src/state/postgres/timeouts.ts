/**
 * Bounds on every wait for the state (STATE=postgres), so that a database that is gone, or a lock that is
 * stuck, gives a 503 after a bounded wait (src/state/unavailable.ts) rather than a request that hangs:
 * connecting, one statement, a lock a statement waits for (the audit chain's, a row's). A person lock is
 * held for a whole write or reservation — a reservation erases the person's data in the clinical store,
 * which may take a while — so a write waits for one longer before it gives up.
 */
export const STATE_TIMEOUTS = {
  connectMs: 5_000,
  lockMs: 10_000,
  statementMs: 15_000,
  personLockMs: 120_000,
};
