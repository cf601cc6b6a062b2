import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, errors as joseErrors, jwtVerify } from 'jose';
import { ASYMMETRIC_ALGORITHMS } from '../config';
import { FhirError, issue, operationOutcome } from '../fhir/outcomes';

/**
 * DPoP proofs (RFC 9449) for sender-constrained access tokens, as HelseID issues them and NHN's reference
 * API checks them: the token carries `cnf.jkt`, and each request carries a `DPoP` header with a proof JWT
 * (`typ: dpop+jwt`) signed by the client's key, which is embedded in the proof header. Checked here:
 * the signature by the embedded public key, its thumbprint equal to `cnf.jkt`, `htm` = the request method,
 * `htu` = the request URL without query and fragment, `iat` within a short window, `ath` = the hash of
 * the access token, and `jti` not seen before (replay cache).
 */

/** How old a proof may be; NHN's sample API allows about a second plus skew, clients retry with a new one. */
const DPOP_MAX_AGE_SECONDS = 10;
/** Clock difference tolerated between the client and this server. */
const DPOP_CLOCK_SKEW_SECONDS = 5;

/** Remembers proof ids until they are too old to be accepted anyway. */
export interface ReplayCache {
  /** Records `key`; false if it was already recorded (a replay). */
  remember(key: string, expiresAtMs: number): Promise<boolean>;
}

/**
 * The in-process replay cache. Replicas behind one load balancer share one instead, in the PostgreSQL
 * state (src/state/postgres/replayCache.ts): a proof replayed to another replica is refused too.
 */
export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();
  private nextSweep = 0;

  constructor(private readonly maxEntries = 1_000_000) {}

  async remember(key: string, expiresAtMs: number): Promise<boolean> {
    const now = Date.now();
    if (now >= this.nextSweep || this.seen.size >= this.maxEntries) {
      for (const [k, expiry] of this.seen) {
        if (expiry <= now) this.seen.delete(k);
      }
      this.nextSweep = now + 1000;
    }
    const existing = this.seen.get(key);
    if (existing !== undefined && existing > now) {
      return false;
    }
    if (this.seen.size >= this.maxEntries) {
      // Refusing is safer than forgetting: a full cache could otherwise be used to replay proofs.
      return false;
    }
    this.seen.set(key, expiresAtMs);
    return true;
  }
}

export interface DpopRequest {
  /** The DPoP header value(s). */
  proof: string | string[] | undefined;
  method: string | undefined;
  /** The request URL as the client addressed it (query and fragment are ignored). */
  url: string | undefined;
  accessToken: string;
  /** The token's cnf.jkt. */
  jkt: string;
}

const DPOP_ALGORITHMS: string[] = [...ASYMMETRIC_ALGORITHMS];

/** A 401 whose challenge tells the client its proof was the problem (RFC 9449 §7.1). */
export function dpopError(text: string): FhirError {
  return new FhirError(401, operationOutcome([issue('login', text)]), {
    'WWW-Authenticate': `DPoP error="invalid_dpop_proof", algs="${DPOP_ALGORITHMS.join(' ')}"`,
  });
}

export async function verifyDpopProof(request: DpopRequest, replay: ReplayCache): Promise<void> {
  const { proof } = request;
  if (proof === undefined || proof === '') {
    throw dpopError('This access token is bound to a key (DPoP): send a DPoP proof in the "DPoP" header.');
  }
  if (Array.isArray(proof)) {
    throw dpopError('Send exactly one DPoP header.');
  }
  if (request.method === undefined || request.url === undefined) {
    throw dpopError('The DPoP proof cannot be checked for this request.');
  }
  let verified;
  try {
    verified = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: DPOP_ALGORITHMS,
      maxTokenAge: DPOP_MAX_AGE_SECONDS,
      clockTolerance: DPOP_CLOCK_SKEW_SECONDS,
      requiredClaims: ['jti', 'htm', 'htu', 'iat', 'ath'],
    });
  } catch (err) {
    throw dpopError(`DPoP proof rejected: ${proofProblem(err)}.`);
  }
  const { payload, protectedHeader } = verified;
  const jwk = protectedHeader.jwk;
  if (jwk === undefined || (await calculateJwkThumbprint(jwk, 'sha256')) !== request.jkt) {
    throw dpopError('DPoP proof rejected: it is not signed with the key the access token is bound to.');
  }
  if (payload.htm !== request.method.toUpperCase()) {
    throw dpopError('DPoP proof rejected: its htm does not match the request method.');
  }
  const htu = typeof payload.htu === 'string' ? normaliseUrl(payload.htu) : undefined;
  if (htu === undefined || htu !== normaliseUrl(request.url)) {
    throw dpopError('DPoP proof rejected: its htu does not match the request URL.');
  }
  const iat = payload.iat as number;
  if (iat > Date.now() / 1000 + DPOP_CLOCK_SKEW_SECONDS) {
    throw dpopError('DPoP proof rejected: it is issued in the future.');
  }
  const ath = createHash('sha256').update(request.accessToken).digest('base64url');
  if (payload.ath !== ath) {
    throw dpopError('DPoP proof rejected: its ath does not match the access token.');
  }
  if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 256) {
    throw dpopError('DPoP proof rejected: its jti must be a unique string of 8 to 256 characters.');
  }
  const expires = (iat + DPOP_MAX_AGE_SECONDS + 2 * DPOP_CLOCK_SKEW_SECONDS) * 1000;
  if (!(await replay.remember(`${request.jkt} ${payload.jti}`, expires))) {
    throw dpopError('DPoP proof rejected: it has been used before; create a new proof for every request.');
  }
}

/** RFC 9449 §4.3: compare without query and fragment, after URL normalisation (case of scheme and host,
 * default ports, percent-encoding), ignoring a trailing slash. */
function normaliseUrl(value: string): string | undefined {
  try {
    const url = new URL(value);
    // POST to the base may be addressed as …/fhir or …/fhir/; the trailing slash carries no meaning here.
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    return undefined;
  }
}

function proofProblem(err: unknown): string {
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iat')
      return 'it is too old or its iat is invalid; create a new proof for every request';
    if (err.claim === 'typ') return 'its typ header must be dpop+jwt';
    return `claim ${err.claim} is missing or invalid`;
  }
  if (err instanceof joseErrors.JWTExpired)
    return 'it is too old (iat); create a new proof for every request';
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return 'its algorithm is not allowed (use an asymmetric one)';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'its signature is invalid';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) {
    return 'it is not a well-formed JWT with a public "jwk" header';
  }
  return 'it could not be verified';
}
