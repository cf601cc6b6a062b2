import pg from 'pg';
import { describeError, getLogger } from '../../logging/logger';
import { advisoryKey } from './lockKey';

/**
 * Which replicas still run (src/state/index.ts, `gone`): each process holds a session-level advisory lock
 * named by its instance id on a connection of its own for its whole life; PostgreSQL releases it when the
 * process dies (its connection closes). Another process that can take that lock knows the owner is gone,
 * and may take over what it left (bulk export jobs to fail, write intents to recover).
 */
export class ReplicaLiveness {
  private constructor(
    private readonly holder: pg.Client,
    private readonly pool: pg.Pool,
    private readonly instance: string,
  ) {}

  static async start(connection: pg.ClientConfig, pool: pg.Pool, instance: string): Promise<ReplicaLiveness> {
    const holder = new pg.Client(connection);
    // Losing it means the others may take this process for gone: said loudly, nothing else to do here.
    holder.on('error', (err) =>
      getLogger().error('replica liveness connection lost; other replicas may take over this one’s work', {
        component: 'state',
        ...describeError(err),
      }),
    );
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [keyOf(instance)]);
    return new ReplicaLiveness(holder, pool, instance);
  }

  async gone(instance: string | undefined): Promise<boolean> {
    if (instance === undefined) return true;
    if (instance === this.instance) return false;
    const client = await this.pool.connect();
    try {
      const { rows } = await client.query<{ free: boolean }>(
        'SELECT pg_try_advisory_lock($1::bigint) AS free',
        [keyOf(instance)],
      );
      if (rows[0]?.free === true) {
        await client.query('SELECT pg_advisory_unlock($1::bigint)', [keyOf(instance)]);
        return true;
      }
      return false;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.holder.end();
  }
}

function keyOf(instance: string): string {
  return advisoryKey(`norpain replica ${instance}`);
}
