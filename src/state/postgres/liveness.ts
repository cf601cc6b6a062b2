import pg from 'pg';
import { describeError, getLogger } from '../../logging/logger';
import { advisoryKey } from './lockKey';

/** How soon a lost liveness connection is opened again. */
const RECONNECT_MS = 1_000;

/**
 * Which replicas still run (src/state/index.ts, `gone`): each process holds a session-level advisory lock
 * named by its instance id on a connection of its own for its whole life; PostgreSQL releases it when the
 * process dies (its connection closes). Another process that can take that lock knows the owner is gone,
 * and may take over what it left (bulk export jobs to fail, write intents to recover).
 *
 * Should the connection drop while the process runs, it is opened again and the lock taken again within
 * about a second; until then the others may take this process for gone (said in the log, loudly). Their
 * recovery runs every 30 s, so the window in which they could act on it is that small.
 */
export class ReplicaLiveness {
  private holder: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  private constructor(
    private readonly connection: pg.ClientConfig,
    private readonly pool: pg.Pool,
    private readonly instance: string,
  ) {}

  static async start(connection: pg.ClientConfig, pool: pg.Pool, instance: string): Promise<ReplicaLiveness> {
    const liveness = new ReplicaLiveness(connection, pool, instance);
    await liveness.hold();
    return liveness;
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
    this.closed = true;
    clearTimeout(this.retry);
    await this.holder?.end();
  }

  private async hold(): Promise<void> {
    const holder = new pg.Client(this.connection);
    holder.on('error', (err) => {
      getLogger().error('replica liveness connection lost; other replicas may take this one for gone', {
        component: 'state',
        ...describeError(err),
      });
      this.again();
    });
    try {
      await holder.connect();
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [keyOf(this.instance)]);
    } catch (err) {
      await holder.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await holder.end();
      return;
    }
    this.holder = holder;
  }

  private again(): void {
    if (this.closed || this.retry !== undefined) return;
    this.holder = undefined;
    this.retry = setTimeout(() => {
      this.hold().then(
        () => {
          this.retry = undefined;
          getLogger().info('replica liveness connection open again', { component: 'state' });
        },
        () => {
          this.retry = undefined;
          this.again();
        },
      );
    }, RECONNECT_MS);
    this.retry.unref();
  }
}

function keyOf(instance: string): string {
  return advisoryKey(`norpain replica ${instance}`);
}
