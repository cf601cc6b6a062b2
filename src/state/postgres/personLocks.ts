import pg from 'pg';
import { type LockMode, PersonLocks, type PersonLockService } from '../../consent/personLock';
import { getLogger, describeError } from '../../logging/logger';
import { stateError } from '../unavailable';
import { advisoryKey } from './lockKey';
import { STATE_TIMEOUTS } from './timeouts';

/**
 * Person locks shared by every replica on one PostgreSQL state (DESIGN §7): a caller's keys are
 * transaction-level advisory locks (shared or exclusive, as asked) on a connection of its own, held until
 * release — for the whole write or reservation — and released by PostgreSQL itself when a replica dies.
 *
 * Within the process the in-memory PersonLocks come first, so callers about one person queue here, first
 * come first served, without each holding a connection; across processes the keys are taken in one global
 * order (their 64-bit advisory keys ascending), so no two callers can wait for each other in a cycle.
 * Each lock family (the write path's, the reservations') has its own pool: a caller holding a connection
 * of one family while it waits for the other cannot starve the other family of connections.
 */
export class PgPersonLocks implements PersonLockService {
  private readonly local = new PersonLocks();
  private readonly pool: pg.Pool;

  constructor(
    connection: pg.ClientConfig,
    /** Names the lock family: its keys never meet another family's. */
    private readonly family: string,
    maxConnections = 10,
    /** How long an acquire waits for another process's holder before it gives up (StateUnavailableError). */
    waitMs = STATE_TIMEOUTS.personLockMs,
  ) {
    // Waits for another holder as long as a reservation may take, then gives up (503), never forever; the
    // statement that waits is given that long too.
    this.pool = new pg.Pool({
      ...connection,
      lock_timeout: waitMs,
      statement_timeout: waitMs + STATE_TIMEOUTS.statementMs,
      max: maxConnections,
    });
    // An idle connection that drops is replaced on the next acquire; nothing to do but not crash.
    this.pool.on('error', (err) =>
      getLogger().warn('person lock connection lost', { component: 'state', ...describeError(err) }),
    );
  }

  async acquire(keys: Iterable<string>, mode: LockMode): Promise<() => void> {
    const names = [...new Set(keys)];
    const releaseLocal = await this.local.acquire(names, mode);
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      await client.query('BEGIN');
      const fn = mode === 'exclusive' ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared';
      for (const key of names.map((name) => BigInt(advisoryKey(`${this.family} ${name}`))).sort(ascending)) {
        // The key as a literal (a bigint this code computed), so the statement goes as a simple query: a
        // parameterised one leaves its unnamed portal, and the portal's snapshot, open in the transaction
        // until it ends, and a snapshot held for a whole write or reservation keeps every VACUUM from
        // removing the rows deleted meanwhile, the erasure's own scrub included (StateDatabase.scrub).
        await client.query(`SELECT ${fn}('${key.toString()}'::bigint)`);
      }
    } catch (err) {
      client?.release(true);
      releaseLocal();
      // Also a wait past lock_timeout (a stuck holder): 503 after a bounded wait, not a hang.
      throw stateError(err);
    }
    const held = client;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Ending the transaction releases the advisory locks; the caller's own writes committed already.
      held.query('COMMIT').then(
        () => {
          held.release();
          releaseLocal();
        },
        (err: unknown) => {
          // A connection that failed here is closed, and PostgreSQL releases its locks with it.
          held.release(true);
          releaseLocal();
          getLogger().warn('person lock release failed', { component: 'state', ...describeError(err) });
        },
      );
    };
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

function ascending(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
