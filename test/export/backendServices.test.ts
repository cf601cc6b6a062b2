import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { importJWK, SignJWT, type JWK } from 'jose';
import { requestBackendToken, signClientAssertion, type BackendClient } from '../../src/auth/clientAssertion';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { newKeyPair, registerClient } from './clients';

/**
 * The development token endpoint (SMART Backend Services): a registered client's signed assertion gets an
 * access token the FHIR API accepts; a replayed, mis-addressed, expired, too long-lived or foreign-signed
 * assertion gets an OAuth error and no token.
 */

let server: TestServer;
let staffClient: BackendClient;
let tokenUrl: string;

beforeAll(async () => {
  server = await startTestServer();
  staffClient = await registerClient(server.dataDir, { clientId: 'registry-etl', role: 'registry-admin' });
  const discovery = (await (await fetch(`${server.baseUrl}/.well-known/smart-configuration`)).json()) as {
    token_endpoint: string;
  };
  tokenUrl = discovery.token_endpoint;
});

afterAll(async () => {
  await server.stop();
});

async function postToken(
  form: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function form(assertion: string, scope = 'system/*.rs'): Record<string, string> {
  return {
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
    scope,
  };
}

/** An assertion with chosen claims, signed with the given private key. */
async function assertion(
  privateJwk: JWK,
  claims: { iss?: string; sub?: string; aud?: string; exp?: number; jti?: string | null },
  alg = 'ES384',
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg, typ: 'JWT', kid: privateJwk.kid })
    .setIssuer(claims.iss ?? staffClient.clientId)
    .setSubject(claims.sub ?? staffClient.clientId)
    .setAudience(claims.aud ?? tokenUrl)
    .setExpirationTime(claims.exp ?? now + 120);
  if (claims.jti !== null) jwt.setJti(claims.jti ?? randomUUID());
  return jwt.sign(await importJWK(privateJwk, alg));
}

describe('discovery', () => {
  it('publishes the token endpoint, the grant and the authentication method at both well-known places', async () => {
    for (const url of [
      `${server.baseUrl}/.well-known/smart-configuration`,
      `${server.origin}/.well-known/smart-configuration`,
    ]) {
      const body = (await (await fetch(url)).json()) as Record<string, unknown>;
      expect(body.token_endpoint).toBe(`${server.origin}/auth/token`);
      expect(body.grant_types_supported).toEqual(['client_credentials']);
      expect(body.token_endpoint_auth_methods_supported).toEqual(['private_key_jwt']);
      expect(body.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS384', 'ES384']);
    }
  });
});

describe('a registered client', () => {
  it('gets a short-lived token that the FHIR API accepts, with its role and the scopes granted', async () => {
    const token = await requestBackendToken(staffClient, tokenUrl, 'system/*.rs');
    expect(token.token_type).toBe('bearer');
    expect(token.expires_in).toBeLessThanOrEqual(300);
    expect(token.scope).toBe('system/*.rs');
    const search = await fetch(`${server.baseUrl}/Patient`, {
      headers: { authorization: `Bearer ${token.access_token}` },
    });
    expect(search.status).toBe(200);
    // Read-only scopes: a write is refused.
    const write = await fetch(`${server.baseUrl}/Questionnaire`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Questionnaire', status: 'draft' }),
    });
    expect(write.status).toBe(403);
  });

  it('is refused a scope beyond its registration (invalid_scope)', async () => {
    const reply = await postToken(form(await signClientAssertion(staffClient, tokenUrl), 'system/*.cruds'));
    expect(reply.status).toBe(400);
    expect(reply.body.error).toBe('invalid_scope');
  });
});

describe('what the token endpoint refuses', () => {
  it('a replayed assertion (same jti)', async () => {
    const signed = await signClientAssertion(staffClient, tokenUrl);
    expect((await postToken(form(signed))).status).toBe(200);
    const replay = await postToken(form(signed));
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
    expect(replay.body.error_description).toMatch(/jti/);
  });

  it.each([
    ['addressed to another audience', { aud: 'https://elsewhere.example/token' }, /aud/],
    ['expired', { exp: Math.floor(Date.now() / 1000) - 60 }, /expired/],
    ['valid for more than five minutes', { exp: Math.floor(Date.now() / 1000) + 3600 }, /five minutes/],
    ['whose sub is not its iss', { sub: 'someone-else' }, /sub/],
    ['without a jti', { jti: null }, /jti/],
  ])('an assertion %s (invalid_client)', async (_what, claims, reason) => {
    const reply = await postToken(form(await assertion(staffClient.privateJwk, claims)));
    expect(reply.status).toBe(401);
    expect(reply.body.error).toBe('invalid_client');
    expect(reply.body.error_description).toMatch(reason);
    expect(reply.body.access_token).toBeUndefined();
  });

  it('an assertion signed by a key not registered for the client', async () => {
    const { privateJwk } = await newKeyPair();
    const reply = await postToken(
      form(await assertion({ ...privateJwk, kid: staffClient.privateJwk.kid }, {})),
    );
    expect(reply.status).toBe(401);
    expect(reply.body.error).toBe('invalid_client');
  });

  it('an assertion signed with an algorithm SMART does not name (ES256)', async () => {
    const other = await registerClient(server.dataDir, { clientId: 'es256-client', role: 'registry-admin' });
    const { privateJwk } = await newKeyPair('ES256');
    const reply = await postToken(
      form(
        await assertion(
          { ...privateJwk, kid: other.privateJwk.kid },
          { iss: 'es256-client', sub: 'es256-client' },
          'ES256',
        ),
      ),
    );
    expect(reply.status).toBe(401);
    expect(reply.body.error).toBe('invalid_client');
  });

  it('a client that is not registered', async () => {
    const { privateJwk } = await newKeyPair();
    const reply = await postToken(
      form(await assertion(privateJwk, { iss: 'unknown-client', sub: 'unknown-client' })),
    );
    expect(reply.status).toBe(401);
    expect(reply.body.error).toBe('invalid_client');
  });

  it('another grant type, or no assertion', async () => {
    const password = await postToken({ ...form('x'), grant_type: 'password' });
    expect(password.status).toBe(400);
    expect(password.body.error).toBe('unsupported_grant_type');
    const { client_assertion: _none, ...rest } = form('x');
    const missing = await postToken(rest);
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('invalid_request');
  });

  it('a form the parser refuses: over 64 kB (413), in a charset other than UTF-8 (415)', async () => {
    const refused = async (body: string, contentType: string) => {
      const response = await fetch(tokenUrl, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const urlencoded = 'application/x-www-form-urlencoded';
    const large = await refused(`client_assertion=${'x'.repeat(70_000)}`, urlencoded);
    expect(large).toEqual({
      status: 413,
      body: { error: 'invalid_request', error_description: expect.stringMatching(/maximum size/) },
    });
    const latin1 = await refused('grant_type=client_credentials', `${urlencoded}; charset=latin1`);
    expect(latin1).toEqual({
      status: 415,
      body: { error: 'invalid_request', error_description: expect.stringMatching(/UTF-8/) },
    });
  });

  it('any method but POST (405)', async () => {
    expect((await fetch(tokenUrl, { method: 'GET' })).status).toBe(405);
  });
});

describe('a server that trusts another issuer (HelseID in production)', () => {
  it('has no token endpoint and no discovery document of its own', async () => {
    const keyFile = path.join(server.dataDir, 'issuer-key.json');
    fs.writeFileSync(keyFile, JSON.stringify((await newKeyPair()).publicJwk));
    const other = await startTestServer({ AUTH_PUBLIC_KEY_FILE: keyFile });
    try {
      expect((await fetch(`${other.origin}/auth/token`, { method: 'POST' })).status).toBe(404);
      expect((await fetch(`${other.origin}/.well-known/smart-configuration`)).status).toBe(404);
    } finally {
      await other.stop();
    }
  });
});
