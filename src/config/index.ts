import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './ConfigError';
import { nonEmpty, readSecret, type Env } from './secrets';
import type { StateConfig } from '../state';

export { ConfigError, isConfigError } from './ConfigError';
export { readSecret, type Env } from './secrets';

export type Mode = 'development' | 'production';
export type StoreKind = 'embedded' | 'hapi';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/**
 * Asymmetric signature algorithms a token may use. Symmetric HS* would let anyone who knows the
 * verification key mint tokens, and `none` is no signature at all, so neither can be configured.
 */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

export interface AuthConfig {
  issuer: string;
  audience: string;
  algorithms: string[];
  /** Keys from the issuer's JWKS endpoint (production, HelseID). */
  jwksUrl?: string;
  /** A PEM public key, a JWK or a JWKS in a file. */
  publicKeyFile?: string;
  /** Seconds of clock difference tolerated on exp/nbf/iat. */
  clockToleranceSeconds: number;
  /** Development only: trust the signing key the server keeps under DATA_DIR (no key configured). */
  useDevKey: boolean;
  /** Refuse tokens that are not DPoP-bound (AUTH_REQUIRE_DPOP=true), as HelseID's security profile asks. */
  requireDpop: boolean;
}

/** Hardening of the HTTP interface (issue 6). */
export interface HttpLimits {
  /** Browser origins allowed by CORS (the patient portal's), from CORS_ORIGINS; none by default. */
  corsOrigins: string[];
  /** Requests per minute one client (token client_id) may make; 0 turns the limit off. */
  rateLimitPerMinute: number;
  /** Failed authentications per minute from one address before it gets 429. */
  authFailuresPerMinute: number;
  /** Most entries a batch or transaction Bundle may have. */
  maxBundleEntries: number;
}

export interface Config {
  mode: Mode;
  port: number;
  /** Absolute path of the data folder. */
  dataDir: string;
  /** For HAPI, `databaseUrl` is HAPI's own PostgreSQL database (HAPI_DATABASE_URL), which erasure checks
   * and vacuums; required in production, where erasure must be physical. */
  store: { kind: 'embedded' } | { kind: 'hapi'; url: string; databaseUrl?: string };
  maxBodyBytes: number;
  /** The FHIR base URL as clients see it (e.g. https://norpain.example.no/fhir); required in production.
   * Without it (development) links use the server's own socket address, never the Host header. */
  publicBaseUrl?: string;
  auth: AuthConfig;
  http: HttpLimits;
  logLevel: LogLevel;
  /** The participating units (pain clinics) loaded at start. */
  unitsFile: string;
  /** Where the vault, register, audit log, person locks and DPoP replay cache live (STATE). */
  state: StateConfig;
  /** Bulk Data export (src/export). */
  export: ExportConfig;
}

export interface ExportConfig {
  /** How long an export's files are kept after it ends (EXPORT_TTL_SECONDS). */
  ttlSeconds: number;
  /** An NDJSON file is split before it would grow past this size (EXPORT_MAX_FILE_BYTES). */
  maxFileBytes: number;
  /** Where the files are written (EXPORT_DIR): one volume every replica mounts, so any replica serves
   * them; DATA_DIR/export/files by default. */
  dir: string;
}

/** Development defaults, chosen so that a dev token from `norpain token` and the dev server agree. */
export const DEV_ISSUER = 'urn:norpain:dev-issuer';
export const DEV_AUDIENCE = 'norpain-fhir';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_UNITS_FILE = path.join(REPO_ROOT, 'config', 'units.json');

/**
 * Reads and validates the configuration from the environment. Every problem throws a ConfigError whose
 * message names the variable and what is wrong with it, so a bad deployment fails at start, not later.
 */
export function loadConfig(env: Env = process.env): Config {
  const mode = parseEnum<Mode>(env, 'NODE_ENV', ['development', 'production'], 'development');
  const port = parseInteger(env, 'PORT', 8080, 1, 65535);
  const dataDir = path.resolve(nonEmpty(env.DATA_DIR) ?? './data');
  const storeKind = parseEnum<StoreKind>(env, 'STORE', ['embedded', 'hapi'], 'embedded');
  const hapiUrl = parseUrl(env, 'HAPI_URL');
  let store: Config['store'];
  if (storeKind === 'hapi') {
    if (hapiUrl === undefined) {
      throw new ConfigError('HAPI_URL must be set when STORE=hapi (e.g. http://localhost:8090/fhir)');
    }
    const databaseUrl = parseDatabaseUrl(env);
    if (databaseUrl === undefined && mode === 'production') {
      throw new ConfigError(
        "HAPI_DATABASE_URL (or HAPI_DATABASE_URL_FILE) must be set when STORE=hapi in production: erasure checks and vacuums HAPI's database (e.g. postgres://hapi:…@db:5432/hapi)",
      );
    }
    store = { kind: 'hapi', url: hapiUrl, ...(databaseUrl === undefined ? {} : { databaseUrl }) };
  } else {
    store = { kind: 'embedded' };
  }
  const state = loadStateConfig(env);
  const maxBodyBytes = parseByteSize(env, 'MAX_BODY_BYTES', 5 * 1024 * 1024);
  const publicBaseUrl = parseUrl(env, 'PUBLIC_BASE_URL');
  const logLevel = parseEnum<LogLevel>(env, 'LOG_LEVEL', LOG_LEVELS, 'info');
  const unitsFile = path.resolve(nonEmpty(env.UNITS_FILE) ?? DEFAULT_UNITS_FILE);
  if (!fs.existsSync(unitsFile)) {
    throw new ConfigError(`UNITS_FILE names a file that does not exist: ${unitsFile}`);
  }
  const auth = loadAuthConfig(env, mode);
  if (mode === 'production' && publicBaseUrl === undefined) {
    // Links, Location and DPoP's htu are built from it; a proxy's Host header is never trusted for them.
    throw new ConfigError(
      'Production mode (NODE_ENV=production) needs PUBLIC_BASE_URL, the FHIR base as clients see it (e.g. https://norpain.example.no/fhir)',
    );
  }
  return {
    mode,
    port,
    dataDir,
    store,
    maxBodyBytes,
    publicBaseUrl,
    auth,
    http: loadHttpLimits(env),
    logLevel,
    unitsFile,
    state,
    export: {
      ttlSeconds: parseInteger(env, 'EXPORT_TTL_SECONDS', 3600, 1, 30 * 24 * 3600),
      maxFileBytes: parseByteSize(env, 'EXPORT_MAX_FILE_BYTES', 256 * 1024 * 1024),
      dir: path.resolve(nonEmpty(env.EXPORT_DIR) ?? path.join(dataDir, 'export', 'files')),
    },
  };
}

function loadAuthConfig(env: Env, mode: Mode): AuthConfig {
  const jwksUrl = parseUrl(env, 'AUTH_JWKS_URL');
  const publicKeyFile = nonEmpty(env.AUTH_PUBLIC_KEY_FILE);
  if (jwksUrl !== undefined && publicKeyFile !== undefined) {
    throw new ConfigError('Set either AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE, not both');
  }
  if (publicKeyFile !== undefined && !fs.existsSync(publicKeyFile)) {
    throw new ConfigError(`AUTH_PUBLIC_KEY_FILE names a file that does not exist: ${publicKeyFile}`);
  }
  const issuer = readSecret(env, 'AUTH_ISSUER');
  const audience = readSecret(env, 'AUTH_AUDIENCE');
  const hasKey = jwksUrl !== undefined || publicKeyFile !== undefined;
  if (mode === 'production') {
    const missing = [
      issuer === undefined ? 'AUTH_ISSUER' : undefined,
      audience === undefined ? 'AUTH_AUDIENCE' : undefined,
      hasKey ? undefined : 'AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE',
    ].filter((name): name is string => name !== undefined);
    if (missing.length > 0) {
      throw new ConfigError(
        `Production mode (NODE_ENV=production) needs token verification configured: set ${missing.join(', ')}`,
      );
    }
  }
  const algorithms = parseAlgorithms(env);
  return {
    issuer: issuer ?? DEV_ISSUER,
    audience: audience ?? DEV_AUDIENCE,
    algorithms,
    jwksUrl,
    publicKeyFile: publicKeyFile === undefined ? undefined : path.resolve(publicKeyFile),
    clockToleranceSeconds: 5,
    useDevKey: !hasKey,
    requireDpop: parseBoolean(env, 'AUTH_REQUIRE_DPOP', false),
  };
}

function loadHttpLimits(env: Env): HttpLimits {
  const origins = (nonEmpty(env.CORS_ORIGINS) ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
  for (const origin of origins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (
      url === undefined ||
      url.origin !== origin ||
      (url.protocol !== 'https:' && url.protocol !== 'http:')
    ) {
      throw new ConfigError(
        `CORS_ORIGINS must list origins such as https://portal.example.no (scheme, host, port; no path), got "${origin}"`,
      );
    }
  }
  return {
    corsOrigins: origins,
    rateLimitPerMinute: parseInteger(env, 'RATE_LIMIT_PER_MINUTE', 6000, 0, 10_000_000),
    authFailuresPerMinute: parseInteger(env, 'AUTH_FAILURES_PER_MINUTE', 300, 1, 1_000_000),
    maxBundleEntries: parseInteger(env, 'MAX_BUNDLE_ENTRIES', 1000, 1, 100_000),
  };
}

function parseBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = nonEmpty(env[name])?.toLowerCase();
  if (raw === undefined) {
    return fallback;
  }
  if (raw !== 'true' && raw !== 'false') {
    throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  }
  return raw === 'true';
}

function parseAlgorithms(env: Env): string[] {
  const raw = nonEmpty(env.AUTH_ALGORITHMS);
  if (raw === undefined) {
    return ['RS256', 'ES256'];
  }
  const list = raw
    .split(',')
    .map((alg) => alg.trim())
    .filter((alg) => alg !== '');
  for (const alg of list) {
    if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new ConfigError(
        `AUTH_ALGORITHMS may only list asymmetric algorithms (${ASYMMETRIC_ALGORITHMS.join(', ')}), got "${alg}"`,
      );
    }
  }
  if (list.length === 0) {
    throw new ConfigError('AUTH_ALGORITHMS must list at least one algorithm, e.g. RS256,ES256');
  }
  return list;
}

export function parseInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) {
    return fallback;
  }
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer ${min}-${max}, got "${raw}"`);
  }
  return value;
}

function parseEnum<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) {
    return fallback;
  }
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function parseUrl(env: Env, name: string): string | undefined {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) {
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an absolute http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name} must be an absolute http(s) URL, got "${raw}"`);
  }
  // A trailing slash would give "base//Patient" when the base is joined with a path.
  return raw.replace(/\/+$/, '');
}

/** STATE=sqlite (default: files under DATA_DIR) or STATE=postgres with DATABASE_URL (or _FILE). */
function loadStateConfig(env: Env): StateConfig {
  const kind = parseEnum<StateConfig['kind']>(env, 'STATE', ['sqlite', 'postgres'], 'sqlite');
  if (kind === 'sqlite') {
    return { kind };
  }
  const databaseUrl = parseDatabaseUrl(env, 'DATABASE_URL');
  if (databaseUrl === undefined) {
    throw new ConfigError(
      "DATABASE_URL (or DATABASE_URL_FILE) must be set when STATE=postgres: the façade's own database, never HAPI's (e.g. postgres://norpain:…@db:5432/norpain_state)",
    );
  }
  return { kind, databaseUrl };
}

/** A PostgreSQL database URL: a secret (it holds the password), so also from NAME_FILE. */
function parseDatabaseUrl(env: Env, name = 'HAPI_DATABASE_URL'): string | undefined {
  const raw = readSecret(env, name);
  if (raw === undefined) {
    return undefined;
  }
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')) {
    // The value holds a password: the message must not repeat it.
    throw new ConfigError(`${name} must be a postgres://user:password@host:port/database URL`);
  }
  return raw;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, mb: 1024 * 1024 };

function parseByteSize(env: Env, name: string, fallback: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) {
    return fallback;
  }
  const match = /^(\d+)\s*(b|kb|mb)?$/i.exec(raw);
  const value = match ? Number(match[1]) * BYTE_UNITS[(match[2] ?? '').toLowerCase()] : NaN;
  if (!Number.isSafeInteger(value) || value < 1024 || value > 1024 * 1024 * 1024) {
    throw new ConfigError(`${name} must be a size from 1kb to 1024mb (e.g. 5242880 or 5mb), got "${raw}"`);
  }
  return value;
}
