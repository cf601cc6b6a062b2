import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import pg from 'pg';
import { MemoryReplayCache, type ReplayCache } from '../auth/dpop';
import { PersonLocks, type PersonLockService } from '../consent/personLock';
import { ConfigError } from '../config/ConfigError';
import { describeError, getLogger } from '../logging/logger';
import type { StateDatabase } from './database';
import { migrate } from './postgres/migrations';
import { PgPersonLocks } from './postgres/personLocks';
import { PgStateDatabase } from './postgres/PgStateDatabase';
import { ReplicaLiveness } from './postgres/liveness';
import { PgReplayCache } from './postgres/replayCache';
import { STATE_TIMEOUTS } from './postgres/timeouts';
import { SqliteStateDatabase } from './sqlite';

export type { StateDatabase, StateDialect } from './database';
export { StateUnavailableError } from './unavailable';

/**
 * Where the façade keeps its state (STATE): SQLite files under DATA_DIR, one process; or one PostgreSQL
 * database (DATABASE_URL) that several replicas share. `schema` puts the tables in a schema of their own
 * (tests; an operator sharing one database).
 */
export type StateConfig = { kind: 'sqlite' } | { kind: 'postgres'; databaseUrl: string; schema?: string };

/** The connection settings of a PostgreSQL state. */
export function pgConnection(state: { databaseUrl: string; schema?: string }): pg.ClientConfig {
  return {
    connectionString: state.databaseUrl,
    connectionTimeoutMillis: STATE_TIMEOUTS.connectMs,
    lock_timeout: STATE_TIMEOUTS.lockMs,
    statement_timeout: STATE_TIMEOUTS.statementMs,
    ...(state.schema === undefined ? {} : { options: `-c search_path=${state.schema}` }),
    application_name: 'norpain',
  };
}

/**
 * What a process shares with the other replicas beside the concerns' databases: the person locks and the
 * DPoP replay cache. On SQLite (one process) both are in memory.
 */
export interface StateServices {
  readonly config: StateConfig;
  /** The person locks of one family (its keys never meet another family's); one instance per family. */
  personLocks(family: LockFamily): PersonLockService;
  replayCache: ReplayCache;
  /** This process among the replicas: a random id for its lifetime, which names the work it runs. */
  readonly instance: string;
  /** Whether the process with this instance id has stopped, so that its unfinished work may be taken
   * over (undefined: work recorded before processes were named, always another's). */
  gone(instance: string | undefined): Promise<boolean>;
  /** Resolves when the state answers (readiness); throws otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The write path's pseudonymise stage links identities under `link`; writes (shared), reservations,
 * merges and re-keying (exclusive) meet under `person` (src/ingest/exclude.ts, personKey); the follow-up's
 * dispatchers take a Task's attempts under `dispatch`.
 */
export type LockFamily = 'link' | 'person' | 'dispatch';

/** PostgreSQL's tables brought up to date, for a command that opens a concern without serving. */
export async function prepareState(config: StateConfig): Promise<void> {
  if (config.kind === 'postgres') {
    await migrate(pgConnection(config));
  }
}

/** Opens the state; on PostgreSQL it first brings the tables up to date (src/state/postgres/migrations.ts). */
export async function openState(config: StateConfig): Promise<StateServices> {
  const instance = randomUUID();
  if (config.kind === 'sqlite') {
    const families = new Map<LockFamily, PersonLocks>();
    return {
      config,
      personLocks: (family) => families.get(family) ?? families.set(family, new PersonLocks()).get(family)!,
      replayCache: new MemoryReplayCache(),
      instance,
      // One process per DATA_DIR: any other named process has stopped.
      gone: async (other) => other !== instance,
      ping: async () => undefined,
      close: async () => undefined,
    };
  }
  const connection = pgConnection(config);
  try {
    await migrate(connection);
  } catch (err) {
    // Stops the start with one line for the operator; PostgreSQL's messages carry no password.
    throw new ConfigError(
      `STATE=postgres: the state database in DATABASE_URL cannot be used: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const families = new Map<LockFamily, PgPersonLocks>();
  const pool = new pg.Pool({ ...connection, max: 4 });
  pool.on('error', (err) =>
    getLogger().warn('state connection lost', { component: 'state', ...describeError(err) }),
  );
  const liveness = await ReplicaLiveness.start(connection, pool, instance);
  let closing: Promise<void> | undefined;
  return {
    config,
    personLocks: (family) =>
      families.get(family) ?? families.set(family, new PgPersonLocks(connection, family)).get(family)!,
    replayCache: new PgReplayCache(pool),
    instance,
    gone: (other) => liveness.gone(other),
    ping: async () => {
      await pool.query('SELECT 1');
    },
    // Once, however often it is called (a test's replica may be stopped before the test state is disposed).
    close: () =>
      (closing ??= (async () => {
        await Promise.all([...families.values()].map((locks) => locks.close()));
        await liveness.close();
        await pool.end();
      })()),
  };
}

/**
 * A concern's database: on PostgreSQL a connection of its own to the shared database (as each concern has
 * a file of its own on SQLite); otherwise the SQLite file `openSqlite` opens with the concern's schema.
 */
export function openStateDatabase(state: StateConfig, openSqlite: () => Database.Database): StateDatabase {
  return state.kind === 'postgres'
    ? new PgStateDatabase(pgConnection(state))
    : new SqliteStateDatabase(openSqlite());
}
