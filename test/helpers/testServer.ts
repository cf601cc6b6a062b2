import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { issueDevToken, type DevTokenRequest } from '../../src/auth/devTokens';
import type { Role } from '../../src/auth/principal';
import { loadConfig, type Config } from '../../src/config';
import { createLogger, setLogger } from '../../src/logging/logger';
import { createServer, type NorpainServer } from '../../src/server';
import { readUnits } from '../../src/units/units';
import { createTestSchema, dropTestSchema, stateDatabaseUrl } from './state';

/** A synthetic fødselsnummer (born 1 Jan 1980, month +80): valid check digits, never a real person. */
export const SYNTHETIC_FNR = '01818040071';

/** What a test may ask of a dev token beyond its role (the same claims `norpain token` takes). */
export type TokenOptions = Omit<DevTokenRequest, 'role'>;

export interface TestServer {
  /** The FHIR base, http://127.0.0.1:PORT/fhir. */
  baseUrl: string;
  /** http://127.0.0.1:PORT, for /healthz and /readyz. */
  origin: string;
  dataDir: string;
  config: Config;
  server: NorpainServer;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  /** A real dev token the server accepts. Clinic, portal and researcher tokens get a default org (the
   * first participating unit), pid (SYNTHETIC_FNR) and study ("test-study") unless given. */
  token(role: Role, opts?: TokenOptions): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The clinical store the HTTP suites run against: the embedded store unless TEST_STORE=hapi, when they run
 * against the HAPI FHIR JPA server at HAPI_URL (CI starts one; see scripts/ci/start-hapi.sh), with its
 * database at HAPI_DATABASE_URL when that is set. This is the
 * one place the caller's environment is read.
 */
function storeUnderTest(): Record<string, string> {
  if (process.env.TEST_STORE !== 'hapi') {
    return {};
  }
  const hapiUrl = process.env.HAPI_URL;
  if (!hapiUrl) {
    throw new Error('TEST_STORE=hapi needs HAPI_URL (start one with scripts/ci/start-hapi.sh)');
  }
  const databaseUrl = process.env.HAPI_DATABASE_URL;
  return { STORE: 'hapi', HAPI_URL: hapiUrl, ...(databaseUrl ? { HAPI_DATABASE_URL: databaseUrl } : {}) };
}

/**
 * The façade's state the HTTP suites run on: SQLite under DATA_DIR unless TEST_STATE=postgres, when each
 * data folder gets a schema of its own in STATE_DATABASE_URL (scripts/ci/create-state-db.sh): a fresh one
 * for a fresh folder, dropped when the server stops; for a folder the test gives (served again by a later
 * server, as a restart would), the folder's own schema, kept.
 */
async function stateUnderTest(
  dataDir: string,
  given: boolean,
): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  if (process.env.TEST_STATE !== 'postgres') {
    return { env: {}, drop: async () => undefined };
  }
  if (!stateDatabaseUrl) {
    throw new Error(
      'TEST_STATE=postgres needs STATE_DATABASE_URL (make one with scripts/ci/create-state-db.sh)',
    );
  }
  const databaseUrl = stateDatabaseUrl;
  const schema = await createTestSchema(databaseUrl, given ? dataDir : undefined);
  const url = new URL(databaseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    env: { STATE: 'postgres', DATABASE_URL: url.toString() },
    drop: () => (given ? Promise.resolve() : dropTestSchema(databaseUrl, schema)),
  };
}

/**
 * Runs the real server in-process on 127.0.0.1 with an ephemeral port, a fresh temporary DATA_DIR, the
 * development signing key and the embedded store. Only envOverrides are read, never the caller's
 * environment, so tests do not depend on the shell they run in.
 */
export async function startTestServer(envOverrides: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-test-'));
  const state = await stateUnderTest(envOverrides.DATA_DIR ?? dataDir, envOverrides.DATA_DIR !== undefined);
  const config = loadConfig({
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ...storeUnderTest(),
    ...state.env,
    ...envOverrides,
  });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: config.logLevel,
    sink: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  setLogger(logger);
  let server: NorpainServer;
  try {
    server = await createServer(config, { logger, identityEnv: envOverrides });
  } catch (err) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    await state.drop();
    throw err;
  }
  const listening = await server.listen(0, '127.0.0.1');
  const firstUnit = readUnits(config.unitsFile)[0].resh;
  return {
    baseUrl: `${listening.url}/fhir`,
    origin: listening.url,
    dataDir,
    config,
    server,
    logs,
    token: (role, opts = {}) => {
      const request: DevTokenRequest = {
        ...opts,
        role,
        org: opts.org ?? (role === 'clinic' ? firstUnit : undefined),
        pid: opts.pid ?? (role === 'portal' ? SYNTHETIC_FNR : undefined),
        study: opts.study ?? (role === 'researcher' ? 'test-study' : undefined),
      };
      return issueDevToken(config, request);
    },
    stop: async () => {
      await server.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      await state.drop();
    },
  };
}
