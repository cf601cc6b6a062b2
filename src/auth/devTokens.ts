import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT } from 'jose';
import type { Config } from '../config';
import { CLAIMS } from './claims';
import { ensureDevSigningKey } from './devKey';
import type { Role } from './principal';

export interface DevTokenRequest {
  role: Role;
  /** RESH id of the unit a clinic token acts for. */
  org?: string;
  /** National id (synthetic in development) a portal token acts for. */
  pid?: string;
  study?: string;
  hpr?: string;
  /** Space-separated or list; defaults per role (DEFAULT_SCOPES). */
  scopes?: string[];
  /** jose time span: "1h", "30m", "90s", "2d". */
  expiresIn?: string;
  clientId?: string;
  /** JWK SHA-256 thumbprint of the client's DPoP key: binds the token to it (`cnf.jkt`). */
  dpopJkt?: string;
}

/** SMART v2 scopes a role's client would be granted (see src/auth/matrix.ts for what each role may do). */
export const DEFAULT_SCOPES: Record<Role, string[]> = {
  clinic: ['system/*.cruds'],
  portal: ['patient/*.cruds'],
  'registry-admin': ['user/*.cruds'],
  researcher: ['user/*.rs'],
};

const EXPIRES =
  /^\d+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days)$/;

export function isValidExpiry(text: string): boolean {
  return EXPIRES.test(text);
}

/**
 * Signs an access token with the development key, with the issuer and audience the dev server checks.
 * Refuses in production mode: there tokens come from the real issuer.
 */
export async function issueDevToken(config: Config, request: DevTokenRequest): Promise<string> {
  if (config.mode === 'production' || !config.auth.useDevKey) {
    throw new Error(
      'Development tokens are only trusted by a development server without AUTH_JWKS_URL/AUTH_PUBLIC_KEY_FILE',
    );
  }
  const expiresIn = request.expiresIn ?? '1h';
  if (!isValidExpiry(expiresIn)) {
    throw new Error(`expiry must look like 90s, 30m, 1h or 2d, got "${expiresIn}"`);
  }
  const { key } = ensureDevSigningKey(config.dataDir);
  const privateKey = await importJWK(key.privateJwk, key.alg);
  const claims: Record<string, unknown> = {
    [CLAIMS.role]: request.role,
    [CLAIMS.clientId]: request.clientId ?? `norpain-dev-${request.role}`,
    [CLAIMS.scope]: (request.scopes ?? DEFAULT_SCOPES[request.role]).join(' '),
  };
  const optional: [string, string | undefined][] = [
    [CLAIMS.organization, request.org],
    [CLAIMS.pid, request.pid],
    [CLAIMS.study, request.study],
    [CLAIMS.hpr, request.hpr],
  ];
  for (const [name, value] of optional) {
    if (value !== undefined) {
      claims[name] = value;
    }
  }
  if (request.dpopJkt !== undefined) {
    claims.cnf = { jkt: request.dpopJkt };
  }
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(config.auth.issuer)
    .setAudience(config.auth.audience)
    .setSubject(claims[CLAIMS.clientId] as string)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .setJti(randomUUID())
    .sign(privateKey);
}
