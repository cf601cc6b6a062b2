import crypto from 'node:crypto';
import fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  type KeyLike,
} from 'jose';
import type { Config } from '../config';
import { ConfigError } from '../config';
import { errors, FhirError } from '../fhir/outcomes';
import { getLogger, type Logger } from '../logging/logger';
import { ClaimError, principalFromClaims } from './claims';
import { devKeyPath, ensureDevSigningKey } from './devKey';
import { dpopError, MemoryReplayCache, verifyDpopProof, type ReplayCache } from './dpop';
import type { Principal } from './principal';

/** What authentication sees of a request. method and url are needed to check DPoP proofs. */
export interface AuthRequest {
  headers: IncomingHttpHeaders;
  method?: string;
  /** The request URL as the client addressed it (public base URL + path), for the DPoP htu. */
  url?: string;
}

/** Establishes who is calling, or throws a 401 FhirError (503 when the issuer's keys are unreachable). */
export type Authenticate = (req: AuthRequest) => Promise<Principal>;

export interface AuthenticatorOptions {
  /** Where DPoP proof ids are remembered; one per process by default. */
  replayCache?: ReplayCache;
  /** Minimum time between two JWKS fetches caused by an unknown kid (default 30 s). */
  jwksCooldownMs?: number;
}

/** Token types HelseID and common issuers put in the JWT header; other types are not access tokens. */
const ACCEPTED_TYP = new Set(['at+jwt', 'application/at+jwt', 'jwt']);

/**
 * Bearer JWT verification with jose: signature against the configured keys (JWKS URL, key file, or in
 * development the server's own dev key), exact issuer, audience, expiry with a few seconds of skew, and
 * an algorithm allow-list that can only hold asymmetric algorithms. Keys are resolved at creation, so a
 * missing or unreadable key file fails the start, not the first request.
 */
export function createAuthenticator(
  config: Config,
  logger: Logger = getLogger(),
  options: AuthenticatorOptions = {},
): Authenticate {
  const key = resolveKey(config, logger, options.jwksCooldownMs ?? 30_000);
  const { issuer, audience, algorithms, clockToleranceSeconds } = config.auth;
  const replay = options.replayCache ?? new MemoryReplayCache();
  const production = config.mode === 'production';
  const verifiedTokens = new VerifiedTokens();
  const verify = async (token: string): Promise<JWTPayload> => {
    try {
      const verified = await verifyWith(key, token, {
        issuer,
        audience,
        algorithms,
        clockTolerance: clockToleranceSeconds,
        requiredClaims: ['exp'],
      });
      const typ = verified.protectedHeader.typ;
      if (typ !== undefined && !ACCEPTED_TYP.has(typ.toLowerCase())) {
        throw errors.unauthorized(`Token type "${typ}" is not an access token`);
      }
      // jose checks iat only together with a maximum token age; a token issued in the future (beyond the
      // skew) comes from a wrong clock or a forger, and would outlive its stated lifetime.
      if (
        typeof verified.payload.iat === 'number' &&
        verified.payload.iat > Date.now() / 1000 + clockToleranceSeconds
      ) {
        throw errors.unauthorized('Token rejected: its issue time (iat) is in the future');
      }
      return verified.payload;
    } catch (err) {
      throw toAuthError(err);
    }
  };
  return async (req) => {
    const { scheme, token } = accessToken(req.headers.authorization);
    const payload = verifiedTokens.get(token) ?? verifiedTokens.remember(token, await verify(token));
    // The binding is checked on every request: a cached token still needs a fresh proof of its key.
    const jkt = boundKeyOf(payload.cnf);
    if (jkt !== undefined) {
      if (scheme !== 'dpop') {
        throw dpopError(
          'This access token is bound to a key (DPoP): send it as "Authorization: DPoP <token>".',
        );
      }
      await verifyDpopProof(
        { proof: req.headers.dpop, method: req.method, url: req.url, accessToken: token, jkt },
        replay,
      );
    } else if (scheme === 'dpop') {
      throw dpopError('The DPoP scheme needs a token bound to a key (cnf.jkt); send this one as Bearer.');
    } else if (config.auth.requireDpop) {
      throw dpopError('This server accepts only DPoP-bound access tokens (cnf.jkt) with a DPoP proof.');
    }
    try {
      return principalFromClaims(payload, audience, production);
    } catch (err) {
      if (err instanceof ClaimError) {
        throw errors.unauthorized(`Token rejected: ${err.message}`);
      }
      throw err;
    }
  };
}

type VerifyKey = JWTVerifyGetKey | KeyLike;

/** Tokens kept verified at most this long: well within jose's 10-minute cache of a remote key set. */
const VERIFIED_TOKEN_MS = 60_000;
/** Verified tokens kept at most (a clinic's EPR sends the same token for its whole lifetime). */
const VERIFIED_TOKENS = 10_000;

/**
 * The claims of tokens whose signature, issuer, audience, type and times were verified, by the token's
 * SHA-256 (the cache holds no usable token), until the token's exp (without the clock skew verification
 * allows) and at most VERIFIED_TOKEN_MS: the same token is then not verified again on every request
 * (ES256 verification was 2 % of the server's busy time under ingest load, bench/ingest --profile). Only
 * successes are kept; past the bound the oldest entry goes.
 */
class VerifiedTokens {
  private readonly byHash = new Map<string, { payload: JWTPayload; until: number }>();

  private static hash(token: string): string {
    return crypto.createHash('sha256').update(token).digest('base64url');
  }

  get(token: string): JWTPayload | undefined {
    const hash = VerifiedTokens.hash(token);
    const entry = this.byHash.get(hash);
    if (entry === undefined) return undefined;
    if (Date.now() < entry.until) return entry.payload;
    this.byHash.delete(hash);
    return undefined;
  }

  remember(token: string, payload: JWTPayload): JWTPayload {
    const now = Date.now();
    const until = Math.min((payload.exp as number) * 1000, now + VERIFIED_TOKEN_MS);
    if (until > now) {
      if (this.byHash.size >= VERIFIED_TOKENS) {
        this.byHash.delete(this.byHash.keys().next().value as string);
      }
      this.byHash.set(VerifiedTokens.hash(token), { payload, until });
    }
    return payload;
  }
}

function verifyWith(key: VerifyKey, token: string, options: Parameters<typeof jwtVerify>[2]) {
  // jwtVerify is overloaded on key kind; the two calls keep the types exact.
  return typeof key === 'function' ? jwtVerify(token, key, options) : jwtVerify(token, key, options);
}

/** `Bearer <token>`, or `DPoP <token>` for a sender-constrained token (RFC 9449 §7.1). */
function accessToken(header: string | undefined): { scheme: 'bearer' | 'dpop'; token: string } {
  if (header === undefined || header.trim() === '') {
    throw errors.unauthorized('This request needs an access token: send "Authorization: Bearer <token>"');
  }
  const match = /^(Bearer|DPoP)\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    throw errors.unauthorized(
      'The Authorization header must use the Bearer scheme: "Bearer <token>" (or "DPoP <token>" for a key-bound token)',
    );
  }
  return { scheme: match[1].toLowerCase() as 'bearer' | 'dpop', token: match[2] };
}

/** The thumbprint a DPoP-bound token is bound to (`cnf.jkt`), if any. */
function boundKeyOf(cnf: unknown): string | undefined {
  if (cnf === undefined) {
    return undefined;
  }
  const jkt = (cnf as { jkt?: unknown } | null)?.jkt;
  if (typeof jkt === 'string' && jkt !== '') {
    return jkt;
  }
  if (typeof cnf === 'object' && cnf !== null && Object.keys(cnf).length > 0) {
    // Another confirmation method (e.g. mTLS x5t#S256) that this server cannot check.
    throw errors.unauthorized(
      'Token rejected: it is bound by a confirmation method this server does not support',
    );
  }
  return undefined;
}

/** Says which check failed, never what the token contained. */
function toAuthError(err: unknown): FhirError {
  if (err instanceof FhirError) {
    return err;
  }
  if (err instanceof joseErrors.JWTExpired) {
    return errors.unauthorized('Token rejected: it has expired');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const reasons: Record<string, string> = {
      iss: 'it was not issued by the trusted issuer',
      aud: 'it is not meant for this server (audience)',
      nbf: 'it is not valid yet',
      iat: 'its issue time is invalid',
      exp: 'it has no valid expiry time',
    };
    return errors.unauthorized(`Token rejected: ${reasons[err.claim] ?? `claim ${err.claim} is invalid`}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return errors.unauthorized('Token rejected: its signature algorithm is not allowed');
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return errors.unauthorized('Token rejected: it was signed with an unknown key');
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return errors.unauthorized('Token rejected: its signature is invalid');
  }
  if (err instanceof joseErrors.JWKSTimeout || isNetworkError(err)) {
    return errors.serviceUnavailable('The token issuer’s keys cannot be fetched right now; try again', 5);
  }
  if (err instanceof joseErrors.JOSENotSupported) {
    return errors.unauthorized('Token rejected: its algorithm or key type is not supported');
  }
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) {
    return errors.unauthorized('Token rejected: it is not a well-formed signed JWT');
  }
  return errors.unauthorized('Token rejected: it could not be verified');
}

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
]);

/** The issuer's JWKS endpoint is down or answers with an error: our problem to wait out, not the client's. */
function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && NETWORK_ERRORS.has(code)) {
    return true;
  }
  return err instanceof joseErrors.JOSEError && /JSON Web Key Set HTTP response/.test(err.message);
}

function resolveKey(config: Config, logger: Logger, cooldownDuration: number): VerifyKey {
  const { auth } = config;
  if (auth.jwksUrl !== undefined) {
    // jose caches the set and refetches on an unknown kid (rate-limited by the cooldown).
    return createRemoteJWKSet(new URL(auth.jwksUrl), {
      timeoutDuration: 5000,
      cooldownDuration,
      cacheMaxAge: 10 * 60_000,
    });
  }
  if (auth.publicKeyFile !== undefined) {
    return keyFromFile(auth.publicKeyFile);
  }
  if (config.mode === 'production' || !auth.useDevKey) {
    throw new ConfigError('No token verification key configured: set AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE');
  }
  const { key, created } = ensureDevSigningKey(config.dataDir);
  if (created) {
    logger.warn('created development token signing key; tokens from `norpain token` are trusted', {
      file: devKeyPath(config.dataDir),
      kid: key.kid,
    });
  }
  return createLocalJWKSet({ keys: [key.publicJwk] });
}

/** A key file holds a PEM public key, one JWK, or a JWKS. Private parts in a JWK are ignored. */
function keyFromFile(file: string): VerifyKey {
  const text = fs.readFileSync(file, 'utf8').trim();
  try {
    if (text.startsWith('{')) {
      const json = JSON.parse(text) as JSONWebKeySet | JWK;
      const keys = 'keys' in json && Array.isArray(json.keys) ? json.keys : [json as JWK];
      return createLocalJWKSet({ keys: keys.map(publicPart) });
    }
    return crypto.createPublicKey(text);
  } catch {
    throw new ConfigError(`AUTH_PUBLIC_KEY_FILE must hold a PEM public key, a JWK or a JWKS: ${file}`);
  }
}

function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, k: _k, ...rest } = jwk;
  if (jwk.kty === 'oct') {
    throw new ConfigError('AUTH_PUBLIC_KEY_FILE must not hold a symmetric (oct) key');
  }
  return rest;
}
