import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { createAuthenticator } from '../../src/auth/authenticator';
import { CLAIMS } from '../../src/auth/claims';
import { loadConfig } from '../../src/config';
import { FhirError } from '../../src/fhir/outcomes';
import { createLogger } from '../../src/logging/logger';

/**
 * HelseID-style tokens against a JWKS served over real HTTP: RS256 and ES256, the key set cached and
 * fetched again when a token names an unknown kid (key rotation), exact issuer and audience, expiry with
 * a few seconds of skew, and HelseID's claims mapped to the principal.
 */
const quiet = createLogger({ level: 'silent' });
const ISSUER = 'https://helseid-sts.test.nhn.no';
const AUDIENCE = 'norpain-fhir';

let jwksServer: http.Server;
let published: JWK[] = [];
let fetches = 0;
let jwksUrl: string;
const dirs: string[] = [];

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyLike;
  jwk: JWK;
}

async function signingKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function sign(key: SigningKey, claims: Record<string, unknown>, build: (jwt: SignJWT) => SignJWT = (j) => j) {
  return build(
    new SignJWT({
      [CLAIMS.role]: 'clinic',
      [CLAIMS.organization]: '999001',
      client_id: 'dips-test',
      ...claims,
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('5m'),
  ).sign(key.privateKey);
}

function authenticator() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-tokens-'));
  dirs.push(dir);
  const config = loadConfig({
    NODE_ENV: 'production',
    PUBLIC_BASE_URL: 'https://norpain.example.no/fhir',
    DATA_DIR: dir,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    AUTH_JWKS_URL: jwksUrl,
  });
  // No cooldown, so that a rotation right after the first fetch is picked up within the test.
  return createAuthenticator(config, quiet, { jwksCooldownMs: 0 });
}

async function failure(promise: Promise<unknown>): Promise<[number, string]> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof FhirError) return [err.status, err.message];
    throw err;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  jwksServer = http.createServer((_req, res) => {
    fetches += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  await new Promise((resolve) => jwksServer.close(resolve));
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

test('RS256 and ES256 tokens verify; the key set is cached and refetched when an unknown kid appears', async () => {
  const first = await signingKey('rsa-1', 'RS256');
  const second = await signingKey('ec-2', 'ES256');
  published = [first.jwk];
  fetches = 0;
  const authenticate = authenticator();
  const headers = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  await expect(authenticate(headers(await sign(first, {})))).resolves.toMatchObject({
    role: 'clinic',
    organization: '999001',
  });
  await expect(authenticate(headers(await sign(first, {})))).resolves.toMatchObject({
    clientId: 'dips-test',
  });
  expect(fetches).toBe(1);
  // The issuer rotates: the new key is published, and the first token signed with it triggers a refetch.
  published = [first.jwk, second.jwk];
  await expect(authenticate(headers(await sign(second, {})))).resolves.toMatchObject({ role: 'clinic' });
  expect(fetches).toBe(2);
  // A kid the issuer never published stays unknown.
  const stranger = await signingKey('nobody', 'ES256');
  expect(await failure(authenticate(headers(await sign(stranger, {}))))).toEqual([
    401,
    'Token rejected: it was signed with an unknown key',
  ]);
});

test('issuer must match exactly, audience must be ours, expiry allows a few seconds of skew only', async () => {
  const key = await signingKey('rsa-3', 'RS256');
  published = [key.jwk];
  const authenticate = authenticator();
  const bearer = async (token: Promise<string>) =>
    authenticate({ headers: { authorization: `Bearer ${await token}` } });
  expect((await failure(bearer(sign(key, {}, (j) => j.setIssuer(`${ISSUER}/`)))))[1]).toContain(
    'trusted issuer',
  );
  expect((await failure(bearer(sign(key, {}, (j) => j.setAudience('other-api')))))[1]).toContain('audience');
  const now = Math.floor(Date.now() / 1000);
  await expect(bearer(sign(key, {}, (j) => j.setExpirationTime(now - 2)))).resolves.toMatchObject({
    role: 'clinic',
  });
  expect((await failure(bearer(sign(key, {}, (j) => j.setExpirationTime(now - 60)))))[1]).toContain(
    'expired',
  );
});

test('HelseID claims map to the principal; scopes named <audience>/<scope> are understood', async () => {
  const key = await signingKey('rsa-4', 'RS256');
  published = [key.jwk];
  const authenticate = authenticator();
  const token = await sign(key, {
    [CLAIMS.hpr]: '1234567',
    scope: [`${AUDIENCE}/system/QuestionnaireResponse.c`, 'openid'],
  });
  await expect(authenticate({ headers: { authorization: `Bearer ${token}` } })).resolves.toMatchObject({
    role: 'clinic',
    organization: '999001',
    hpr: '1234567',
    scopes: ['system/QuestionnaireResponse.c', 'openid'],
  });
});

test('a token is verified once, but not trusted past its expiry, and a copy with another signature is verified again', async () => {
  const key = await signingKey('ec-5', 'ES256');
  published = [key.jwk];
  fetches = 0;
  const authenticate = authenticator();
  const bearer = (token: string) => authenticate({ headers: { authorization: `Bearer ${token}` } });
  const started = Date.now();
  const token = await sign(key, {}, (j) => j.setExpirationTime(Math.floor(started / 1000) + 20));
  await expect(bearer(token)).resolves.toMatchObject({ role: 'clinic' });
  await expect(bearer(token)).resolves.toMatchObject({ role: 'clinic' });
  // The same header and claims with a signature that is not the issuer's: refused, cache or not.
  const [header, payload] = token.split('.');
  const forged = `${header}.${payload}.${(await sign(await signingKey('ec-5', 'ES256'), {})).split('.')[2]}`;
  expect(await failure(bearer(forged))).toEqual([401, 'Token rejected: its signature is invalid']);
  // 40 s later (past exp and its skew, within the time a verified token is kept): refused as expired.
  jest.useFakeTimers({
    doNotFake: ['nextTick', 'setImmediate', 'setTimeout', 'setInterval', 'queueMicrotask'],
  });
  try {
    jest.setSystemTime(started + 40_000);
    expect(await failure(bearer(token))).toEqual([401, 'Token rejected: it has expired']);
  } finally {
    jest.useRealTimers();
  }
  expect(fetches).toBe(1);
});
