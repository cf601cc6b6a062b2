import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { issueDevToken } from '../../src/auth/devTokens';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * DPoP-bound tokens (RFC 9449) through HTTP: the token carries cnf.jkt, each request a fresh proof signed
 * by the client's key. Every check the server makes is exercised by a request that fails only that check.
 */
let server: TestServer;
let clientKey: { privateKey: KeyLike; jwk: JWK };
let token: string;
let url: string;

async function keyPair(): Promise<{ privateKey: KeyLike; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, jwk: await exportJWK(publicKey) };
}

async function proof(
  options: {
    htm?: string;
    htu?: string;
    accessToken?: string;
    key?: { privateKey: KeyLike; jwk: JWK };
    iat?: number;
    jti?: string;
    typ?: string;
  } = {},
): Promise<string> {
  const key = options.key ?? clientKey;
  const ath = createHash('sha256')
    .update(options.accessToken ?? token)
    .digest('base64url');
  const jwt = new SignJWT({
    htm: options.htm ?? 'GET',
    htu: options.htu ?? url,
    ath,
    jti: options.jti ?? randomUUID(),
  })
    .setProtectedHeader({ alg: 'ES256', typ: options.typ ?? 'dpop+jwt', jwk: key.jwk })
    .setIssuedAt(options.iat ?? Math.floor(Date.now() / 1000));
  return jwt.sign(key.privateKey);
}

async function get(
  headers: Record<string, string>,
  target = url,
): Promise<{ status: number; challenge: string | null; text: string }> {
  const reply = await fetch(target, { headers });
  return { status: reply.status, challenge: reply.headers.get('www-authenticate'), text: await reply.text() };
}

beforeAll(async () => {
  server = await startTestServer();
  clientKey = await keyPair();
  const jkt = await calculateJwkThumbprint(clientKey.jwk, 'sha256');
  token = await issueDevToken(server.config, { role: 'registry-admin', dpopJkt: jkt });
  url = `${server.baseUrl}/Questionnaire`;
});

afterAll(async () => {
  await server.stop();
});

test('a valid proof is accepted (the query string is not part of htu)', async () => {
  expect((await get({ authorization: `DPoP ${token}`, dpop: await proof() })).status).toBe(200);
  const withQuery = `${url}?_count=5`;
  expect((await get({ authorization: `DPoP ${token}`, dpop: await proof() }, withQuery)).status).toBe(200);
});

test('a replayed proof is refused', async () => {
  const once = await proof();
  expect((await get({ authorization: `DPoP ${token}`, dpop: once })).status).toBe(200);
  const replay = await get({ authorization: `DPoP ${token}`, dpop: once });
  expect(replay.status).toBe(401);
  expect(replay.challenge).toMatch(/^DPoP error="invalid_dpop_proof"/);
  expect(replay.text).toContain('used before');
});

test.each([
  ['wrong htu', () => proof({ htu: `${server.baseUrl}/Patient` }), 'htu'],
  ['wrong htm', () => proof({ htm: 'POST' }), 'htm'],
  ['wrong key (not the bound one)', async () => proof({ key: await keyPair() }), 'not signed with the key'],
  ['proof for another token (ath)', () => proof({ accessToken: 'another.token.value' }), 'ath'],
  ['too old', () => proof({ iat: Math.floor(Date.now() / 1000) - 120 }), 'too old'],
  ['issued in the future', () => proof({ iat: Math.floor(Date.now() / 1000) + 120 }), 'iat'],
  ['wrong typ', () => proof({ typ: 'JWT' }), 'typ'],
])('%s is refused with 401 and a DPoP challenge', async (_name, make, message) => {
  const reply = await get({ authorization: `DPoP ${token}`, dpop: await make() });
  expect(reply.status).toBe(401);
  expect(reply.challenge).toMatch(/^DPoP /);
  expect(JSON.parse(reply.text)).toMatchObject({
    resourceType: 'OperationOutcome',
    issue: [{ code: 'login' }],
  });
  expect(reply.text).toContain(message);
});

test('a bound token without a proof, or sent as Bearer, is refused', async () => {
  const missing = await get({ authorization: `DPoP ${token}` });
  expect([missing.status, missing.challenge?.startsWith('DPoP')]).toEqual([401, true]);
  expect(missing.text).toContain('DPoP proof');
  const asBearer = await get({ authorization: `Bearer ${token}`, dpop: await proof() });
  expect(asBearer.status).toBe(401);
  expect(asBearer.text).toContain('Authorization: DPoP');
});

test('a proof signed with a private key in its header, or with alg none, is refused', async () => {
  const privateJwk = await exportJWK(clientKey.privateKey);
  const leaky = await new SignJWT({
    htm: 'GET',
    htu: url,
    ath: createHash('sha256').update(token).digest('base64url'),
    jti: randomUUID(),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: privateJwk })
    .setIssuedAt()
    .sign(clientKey.privateKey);
  expect((await get({ authorization: `DPoP ${token}`, dpop: leaky })).status).toBe(401);
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: clientKey.jwk })).toString(
    'base64url',
  );
  const body = Buffer.from(
    JSON.stringify({ htm: 'GET', htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID() }),
  ).toString('base64url');
  expect((await get({ authorization: `DPoP ${token}`, dpop: `${header}.${body}.` })).status).toBe(401);
});

test('the DPoP scheme with an unbound token is refused; AUTH_REQUIRE_DPOP refuses unbound tokens', async () => {
  const unbound = await server.token('registry-admin');
  expect(
    (await get({ authorization: `DPoP ${unbound}`, dpop: await proof({ accessToken: unbound }) })).status,
  ).toBe(401);
  expect((await get({ authorization: `Bearer ${unbound}` })).status).toBe(200);
  const strict = await startTestServer({ AUTH_REQUIRE_DPOP: 'true' });
  try {
    const plain = await strict.token('registry-admin');
    const refused = await get({ authorization: `Bearer ${plain}` }, `${strict.baseUrl}/Questionnaire`);
    expect([refused.status, refused.challenge?.startsWith('DPoP')]).toEqual([401, true]);
  } finally {
    await strict.stop();
  }
});
