import express, { type NextFunction, type Request, type Response } from 'express';
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import type { Config } from '../config';
import { serverOrigin } from '../fhir/http';
import { fhirErrorOfHttp } from '../fhir/outcomes';
import { describeError, type Logger } from '../logging/logger';
import { findDevClient, type DevClient } from './devClients';
import { issueDevToken } from './devTokens';
import { MemoryReplayCache, type ReplayCache } from './dpop';
import { parseScopes, scopesAllow, type Permission } from './scopes';

/**
 * SMART Backend Services (SMART App Launch 2, "Backend Services") for development: `POST /auth/token`
 * takes a client-credentials grant authenticated with a signed JWT (`private_key_jwt`) of a registered
 * dev client (devClients.ts), and answers with an access token signed by the development key, which the
 * server's authenticator accepts like any other. Bulk clients pointed at a development server thus work
 * unchanged against production, where HelseID plays this part. The discovery document
 * (`.well-known/smart-configuration`) says so.
 */

const TOKEN_PATH = '/auth/token';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The algorithms SMART Backend Services names for client assertions. */
const ASSERTION_ALGORITHMS = ['RS384', 'ES384'];
/** An assertion may live at most this long (SMART: exp no more than five minutes in the future). */
const MAX_ASSERTION_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 5;
/** Lifetime of the access tokens issued here. */
const TOKEN_SECONDS = 300;

type OAuthError =
  'invalid_request' | 'invalid_client' | 'invalid_grant' | 'invalid_scope' | 'unsupported_grant_type';

class TokenError extends Error {
  constructor(
    readonly code: OAuthError,
    readonly description: string,
  ) {
    super(description);
  }
}

/** The token endpoint as clients address it: PUBLIC_BASE_URL's origin, else this server's own socket. */
function tokenUrl(config: Config, req: Request): string {
  const origin =
    config.publicBaseUrl !== undefined ? new URL(config.publicBaseUrl).origin : serverOrigin(req);
  return `${origin}${TOKEN_PATH}`;
}

export interface BackendServicesOptions {
  /** Where assertion ids (jti) are remembered against replay; one per process by default. */
  replayCache?: ReplayCache;
}

/** The token endpoint and the SMART discovery document, mounted on the app (development only). */
export function backendServices(
  config: Config,
  logger: Logger,
  options: BackendServicesOptions = {},
): express.Router {
  const replay = options.replayCache ?? new MemoryReplayCache();
  const router = express.Router();

  const discovery = (req: Request, res: Response) => {
    res.json({
      token_endpoint: tokenUrl(config, req),
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      scopes_supported: ['system/*.rs', 'system/*.read'],
      capabilities: ['client-confidential-asymmetric', 'permission-v2', 'permission-v1'],
    });
  };
  router.get(['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration'], discovery);

  router.post(TOKEN_PATH, express.urlencoded({ extended: false, limit: '64kb' }), async (req, res) => {
    // Tokens must never be cached by a proxy (RFC 6749 §5.1).
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    try {
      const form = (req.body ?? {}) as Record<string, unknown>;
      const client = await authenticateClient(config, form, tokenUrl(config, req), replay);
      const scopes = grantedScopes(client, form.scope);
      const token = await issueDevToken(config, {
        role: client.role,
        study: client.study,
        scopes,
        clientId: client.clientId,
        expiresIn: `${TOKEN_SECONDS}s`,
      });
      res.json({
        access_token: token,
        token_type: 'bearer',
        expires_in: TOKEN_SECONDS,
        scope: scopes.join(' '),
      });
    } catch (err) {
      if (err instanceof TokenError) {
        res
          .status(err.code === 'invalid_client' ? 401 : 400)
          .json({ error: err.code, error_description: err.description });
        return;
      }
      logger.error('token endpoint failed', describeError(err));
      res.status(500).json({ error: 'server_error', error_description: 'The token could not be issued.' });
    }
  });
  // A form the parser refused (too large, another charset, cut short) is answered as an OAuth error too.
  router.use(TOKEN_PATH, (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const refused = fhirErrorOfHttp(err);
    if (refused === undefined) {
      next(err);
      return;
    }
    res.status(refused.status).json({ error: 'invalid_request', error_description: refused.message });
  });
  router.all(TOKEN_PATH, (_req, res) => {
    res
      .status(405)
      .set('Allow', 'POST')
      .json({ error: 'invalid_request', error_description: 'POST the token request as a form.' });
  });
  return router;
}

/** The registered client whose signed assertion this form carries (SMART Backend Services §"Authorize"). */
async function authenticateClient(
  config: Config,
  form: Record<string, unknown>,
  audience: string,
  replay: ReplayCache,
): Promise<DevClient> {
  if (form.grant_type !== 'client_credentials') {
    throw new TokenError('unsupported_grant_type', 'grant_type must be client_credentials.');
  }
  if (form.client_assertion_type !== ASSERTION_TYPE) {
    throw new TokenError('invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}.`);
  }
  const assertion = form.client_assertion;
  if (typeof assertion !== 'string' || assertion === '') {
    throw new TokenError('invalid_request', 'client_assertion (a signed JWT) is missing.');
  }
  let issuer: unknown;
  try {
    issuer = decodeJwt(assertion).iss;
  } catch {
    throw new TokenError('invalid_client', 'client_assertion is not a well-formed JWT.');
  }
  const client = typeof issuer === 'string' ? findDevClient(config.dataDir, issuer) : undefined;
  if (client === undefined) {
    throw new TokenError('invalid_client', 'The assertion’s iss is not a registered client.');
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, createLocalJWKSet(client.jwks), {
      algorithms: ASSERTION_ALGORITHMS,
      issuer: client.clientId,
      subject: client.clientId,
      audience,
      clockTolerance: CLOCK_SKEW_SECONDS,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    throw new TokenError('invalid_client', `The client assertion was rejected: ${assertionProblem(err)}.`);
  }
  const exp = payload.exp as number;
  if (exp > Date.now() / 1000 + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS) {
    throw new TokenError('invalid_client', 'The client assertion’s exp is more than five minutes ahead.');
  }
  if (
    !(await replay.remember(`${client.clientId} ${String(payload.jti)}`, (exp + CLOCK_SKEW_SECONDS) * 1000))
  ) {
    throw new TokenError(
      'invalid_client',
      'This client assertion (its jti) has been used before; sign a new one.',
    );
  }
  return client;
}

/** Says which check failed, never what the assertion held. */
function assertionProblem(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const claims: Record<string, string> = {
      aud: `its aud must be the token endpoint URL`,
      iss: 'its iss must be the client id',
      sub: 'its sub must be the client id',
      jti: 'it needs a jti',
      exp: 'it needs an exp',
    };
    return claims[err.claim] ?? `its ${err.claim} claim is invalid`;
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return `it must be signed with ${ASSERTION_ALGORITHMS.join(' or ')}`;
  if (
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWSSignatureVerificationFailed
  ) {
    return 'it is not signed by a key registered for this client';
  }
  return 'it could not be verified';
}

/**
 * The scopes granted: each requested one must be a `system/` scope that the client's registration
 * covers (a registered `system/*.rs` covers `system/Patient.rs`); any other is invalid_scope.
 */
function grantedScopes(client: DevClient, requested: unknown): string[] {
  if (typeof requested !== 'string' || requested.trim() === '') {
    throw new TokenError('invalid_scope', 'scope is required, e.g. system/*.rs.');
  }
  const registered = parseScopes(client.scopes);
  const scopes = requested.split(' ').filter((s) => s !== '');
  for (const scope of scopes) {
    const [grant] = parseScopes([scope]);
    const covered =
      grant !== undefined &&
      grant.context === 'system' &&
      [...grant.permissions].every((p: Permission) => scopesAllow(registered, grant.type, p, ['system']));
    if (!covered) {
      throw new TokenError('invalid_scope', 'A requested scope is not one this client is registered for.');
    }
  }
  return scopes;
}
