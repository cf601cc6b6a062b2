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
import { PgReplayCache } from './postgres/replayCache';
import { SqliteStateDatabase } from './sqlite';

export type { SqlValue, StateDatabase, StateDialect, TransactionOptions } from './database';

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
  /** Resolves when the state answers (readiness); throws otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The write path's pseudonymise stage links identities under `link`; writes (shared), reservations,
 * merges and re-keying (exclusive) meet under `person` (src/ingest/exclude.ts, personKey).
 */
export type LockFamily = 'link' | 'person';

/** PostgreSQL's tables brought up to date, for a command that opens a concern without serving. */
export async function prepareState(config: StateConfig): Promise<void> {
  if (config.kind === 'postgres') {
    await migrate(pgConnection(config));
  }
}

/** Opens the state; on PostgreSQL it first brings the tables up to date (src/state/postgres/migrations.ts). */
export async function openState(config: StateConfig): Promise<StateServices> {
  if (config.kind === 'sqlite') {
    const families = new Map<LockFamily, PersonLocks>();
    return {
      config,
      personLocks: (family) => families.get(family) ?? families.set(family, new PersonLocks()).get(family)!,
      replayCache: new MemoryReplayCache(),
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
  return {
    config,
    personLocks: (family) =>
      families.get(family) ?? families.set(family, new PgPersonLocks(connection, family)).get(family)!,
    replayCache: new PgReplayCache(pool),
    ping: async () => {
      await pool.query('SELECT 1');
    },
    close: async () => {
      await Promise.all([...families.values()].map((locks) => locks.close()));
      await pool.end();
    },
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
