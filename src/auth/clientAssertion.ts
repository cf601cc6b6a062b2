import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';

/**
 * The client side of SMART Backend Services: a client assertion signed with the client's private key,
 * and the token request that carries it. `norpain export` uses it; it works against any server that
 * follows the specification (this one in development, HelseID in production).
 */

export interface BackendClient {
  clientId: string;
  /** The client's private key as a JWK (RS384 or ES384: its `alg`, else by key type), with its `kid`. */
  privateJwk: JWK;
}

/** A signed assertion for `tokenUrl`, valid for `lifetimeSeconds` (at most 300 by the specification). */
export async function signClientAssertion(
  client: BackendClient,
  tokenUrl: string,
  lifetimeSeconds = 240,
): Promise<string> {
  const alg = client.privateJwk.alg ?? (client.privateJwk.kty === 'RSA' ? 'RS384' : 'ES384');
  const key = await importJWK(client.privateJwk, alg);
  return new SignJWT({})
    .setProtectedHeader({ alg, typ: 'JWT', ...(client.privateJwk.kid ? { kid: client.privateJwk.kid } : {}) })
    .setIssuer(client.clientId)
    .setSubject(client.clientId)
    .setAudience(tokenUrl)
    .setIssuedAt()
    .setExpirationTime(`${lifetimeSeconds}s`)
    .setJti(randomUUID())
    .sign(key);
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

/** Requests an access token with the client-credentials grant; throws with the OAuth error it got. */
export async function requestBackendToken(
  client: BackendClient,
  tokenUrl: string,
  scope: string,
): Promise<TokenResponse> {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await signClientAssertion(client, tokenUrl),
      scope,
    }),
  });
  const body = (await response.json()) as Partial<TokenResponse> & {
    error?: string;
    error_description?: string;
  };
  if (!response.ok || typeof body.access_token !== 'string') {
    throw new Error(
      `the token endpoint refused: ${body.error ?? response.status} ${body.error_description ?? ''}`.trim(),
    );
  }
  return body as TokenResponse;
}
