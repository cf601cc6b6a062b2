import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openState, type StateConfig, type StateServices } from '../../src/state';

/**
 * The PostgreSQL state database tests use (scripts/ci/create-state-db.sh prints it; .ci/run exports it).
 * Each test run gets a schema of its own in it, dropped at the end, so runs never see each other's rows.
 */
export const stateDatabaseUrl = process.env.STATE_DATABASE_URL;

/** A state of one kind for a test: its configuration, a data folder, and a way to open "another replica". */
export interface TestState {
  config: StateConfig;
  dataDir: string;
  /** The state as a server process opens it (migrations run on PostgreSQL). */
  services: StateServices;
  /** What a second replica opens: on PostgreSQL its own connections; on SQLite (one process) the same. */
  replica(): Promise<StateServices>;
  dispose(): Promise<void>;
}

export async function sqliteTestState(): Promise<TestState> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-state-'));
  const config: StateConfig = { kind: 'sqlite' };
  const services = await openState(config);
  return {
    config,
    dataDir,
    services,
    replica: async () => services,
    dispose: async () => {
      await services.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A fresh schema in STATE_DATABASE_URL; dispose drops it with everything in it. */
export async function postgresTestState(databaseUrl: string): Promise<TestState> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-state-'));
  const schema = await createTestSchema(databaseUrl);
  const config: StateConfig = { kind: 'postgres', databaseUrl, schema };
  const services = await openState(config);
  const replicas: StateServices[] = [];
  return {
    config,
    dataDir,
    services,
    replica: async () => {
      const replica = await openState(config);
      replicas.push(replica);
      return replica;
    },
    dispose: async () => {
      await Promise.all([services, ...replicas].map((s) => s.close()));
      await dropTestSchema(databaseUrl, schema);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The state database's URL with its tables in `schema` (what a server is given as DATABASE_URL). */
export function schemaUrl(databaseUrl: string, schema: string): string {
  const url = new URL(databaseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** A new schema, or with `name` the one that name always gives (created if it does not exist yet). */
export async function createTestSchema(databaseUrl: string, name?: string): Promise<string> {
  const suffix =
    name === undefined
      ? randomBytes(6).toString('hex')
      : createHash('sha256').update(name).digest('hex').slice(0, 12);
  const schema = `test_${suffix}`;
  await withClient(databaseUrl, (client) => client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`));
  return schema;
}

export async function dropTestSchema(databaseUrl: string, schema: string): Promise<void> {
  await withClient(databaseUrl, (client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
}

async function withClient<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(databaseUrl);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
