import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWTPayload } from 'jose';
import { createAuthenticator, type Authenticate } from '../../src/auth/authenticator';
import { CLAIMS } from '../../src/auth/claims';
import { ensureDevSigningKey } from '../../src/auth/devKey';
import { issueDevToken } from '../../src/auth/devTokens';
import { loadConfig, type Config } from '../../src/config';
import { FhirError } from '../../src/fhir/outcomes';
import { syntheticNationalId } from '../../src/identity/synthetic';
import { createLogger } from '../../src/logging/logger';

const quiet = createLogger({ level: 'silent' });
const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-auth-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = (): number => Math.floor(Date.now() / 1000);

/** The status and message an authenticator gives for an Authorization header. */
async function rejection(authenticate: Authenticate, authorization?: string): Promise<[number, string]> {
  try {
    await authenticate({ headers: authorization === undefined ? {} : { authorization } });
  } catch (err) {
    expect(err).toBeInstanceOf(FhirError);
    const fhirError = err as FhirError;
    return [fhirError.status, fhirError.outcome.issue?.[0]?.details?.text ?? ''];
  }
  throw new Error('token was accepted');
}

describe('development key and tokens', () => {
  let config: Config;
  let authenticate: Authenticate;
  let devPrivate: crypto.KeyObject | Uint8Array;
  let kid: string;

  const clinicClaims = (): JWTPayload => ({
    [CLAIMS.role]: 'clinic',
    [CLAIMS.organization]: '999001',
    client_id: 'dips-test',
    scope: 'system/Patient.c system/QuestionnaireResponse.cr',
  });

  /** A token signed with the real dev key, with these claims and header changes. */
  function sign(
    claims: JWTPayload = clinicClaims(),
    options: { iss?: string; aud?: string; exp?: number | null; nbf?: number; typ?: string } = {},
  ): Promise<string> {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid, typ: options.typ ?? 'at+jwt' })
      .setIssuer(options.iss ?? config.auth.issuer)
      .setAudience(options.aud ?? config.auth.audience)
      .setIssuedAt();
    if (options.exp !== null) {
      jwt.setExpirationTime(options.exp ?? now() + 600);
    }
    if (options.nbf !== undefined) {
      jwt.setNotBefore(options.nbf);
    }
    return jwt.sign(devPrivate);
  }

  beforeAll(async () => {
    config = loadConfig({ DATA_DIR: tempDir() });
    authenticate = createAuthenticator(config, quiet);
    const { key } = ensureDevSigningKey(config.dataDir);
    kid = key.kid;
    devPrivate = await importJWK(key.privateJwk, 'ES256');
  });

  test('the dev key is created once, private to its owner, and reused', () => {
    const file = path.join(config.dataDir, 'keys', 'dev-signing-key.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const again = ensureDevSigningKey(config.dataDir);
    expect(again.created).toBe(false);
    expect(again.key.kid).toBe(kid);
  });

  test('a dev token maps to the principal it names', async () => {
    const token = await issueDevToken(config, { role: 'clinic', org: '999002', hpr: '9144889' });
    await expect(authenticate({ headers: { authorization: `Bearer ${token}` } })).resolves.toEqual({
      role: 'clinic',
      clientId: 'norpain-dev-clinic',
      organization: '999002',
      hpr: '9144889',
      pid: undefined,
      study: undefined,
      scopes: ['system/*.cruds'],
    });
    const portal = await issueDevToken(config, {
      role: 'portal',
      pid: '01818040071',
      scopes: ['patient/Patient.r'],
    });
    await expect(authenticate({ headers: { authorization: `bearer ${portal}` } })).resolves.toMatchObject({
      role: 'portal',
      pid: '01818040071',
      scopes: ['patient/Patient.r'],
    });
  });

  test('claims: client_id, else sub; space-separated scopes; typ JWT or absent accepted', async () => {
    const principal = await authenticate({ headers: { authorization: `Bearer ${await sign()}` } });
    expect(principal).toMatchObject({
      clientId: 'dips-test',
      scopes: ['system/Patient.c', 'system/QuestionnaireResponse.cr'],
    });
    const { client_id: _c, ...noClientId } = clinicClaims();
    const withSub = await sign({ ...noClientId, sub: 'epr-client' }, { typ: 'JWT' });
    await expect(authenticate({ headers: { authorization: `Bearer ${withSub}` } })).resolves.toMatchObject({
      clientId: 'epr-client',
    });
  });

  test('missing or non-bearer Authorization is a 401 that says what to send', async () => {
    expect(await rejection(authenticate)).toEqual([
      401,
      'This request needs an access token: send "Authorization: Bearer <token>"',
    ]);
    expect((await rejection(authenticate, 'Basic dXNlcjpwdw=='))[1]).toContain('must use the Bearer scheme');
    expect((await rejection(authenticate, 'Bearer not-a-jwt'))[1]).toBe(
      'Token rejected: it is not a well-formed signed JWT',
    );
  });

  test.each([
    [
      'wrong issuer',
      { iss: 'https://evil.example' },
      'Token rejected: it was not issued by the trusted issuer',
    ],
    ['wrong audience', { aud: 'another-api' }, 'Token rejected: it is not meant for this server (audience)'],
    ['expired', { exp: now() - 600 }, 'Token rejected: it has expired'],
    ['not yet valid', { nbf: now() + 600 }, 'Token rejected: it is not valid yet'],
    ['without expiry', { exp: null }, 'Token rejected: it has no valid expiry time'],
    ['not an access token', { typ: 'dpop+jwt' }, 'Token type "dpop+jwt" is not an access token'],
  ])('%s is rejected', async (_name, options, message) => {
    const token = await sign(clinicClaims(), options as Parameters<typeof sign>[1]);
    const [status, text] = await rejection(authenticate, `Bearer ${token}`);
    expect(status).toBe(401);
    expect(text).toBe(message);
    // The message names the failed check, never the token or its claims.
    expect(text).not.toContain('999001');
    expect(text).not.toContain('dips-test');
  });

  test('alg none is rejected', async () => {
    const payload = {
      ...clinicClaims(),
      iss: config.auth.issuer,
      aud: config.auth.audience,
      exp: now() + 600,
    };
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    expect(await rejection(authenticate, `Bearer ${token}`)).toEqual([
      401,
      'Token rejected: its signature algorithm is not allowed',
    ]);
  });

  test('HS256 signed with the public key as the secret is rejected (key confusion)', async () => {
    const { key } = ensureDevSigningKey(config.dataDir);
    const publicPem = crypto
      .createPublicKey({ key: key.publicJwk as crypto.JsonWebKey, format: 'jwk' })
      .export({
        type: 'spki',
        format: 'pem',
      });
    for (const secret of [Buffer.from(publicPem), Buffer.from(JSON.stringify(key.publicJwk))]) {
      const token = await new SignJWT(clinicClaims())
        .setProtectedHeader({ alg: 'HS256', kid })
        .setIssuer(config.auth.issuer)
        .setAudience(config.auth.audience)
        .setExpirationTime('10m')
        .sign(secret);
      expect(await rejection(authenticate, `Bearer ${token}`)).toEqual([
        401,
        'Token rejected: its signature algorithm is not allowed',
      ]);
    }
  });

  test('a token signed by another key is rejected, whether its kid is unknown or borrowed', async () => {
    const other = await generateKeyPair('ES256');
    const unknownKid = await new SignJWT(clinicClaims())
      .setProtectedHeader({ alg: 'ES256', kid: 'someone-else' })
      .setIssuer(config.auth.issuer)
      .setAudience(config.auth.audience)
      .setExpirationTime('10m')
      .sign(other.privateKey);
    expect(await rejection(authenticate, `Bearer ${unknownKid}`)).toEqual([
      401,
      'Token rejected: it was signed with an unknown key',
    ]);
    const borrowedKid = await new SignJWT(clinicClaims())
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(config.auth.issuer)
      .setAudience(config.auth.audience)
      .setExpirationTime('10m')
      .sign(other.privateKey);
    expect(await rejection(authenticate, `Bearer ${borrowedKid}`)).toEqual([
      401,
      'Token rejected: its signature is invalid',
    ]);
  });

  test('a tampered payload is rejected', async () => {
    const [header, , signature] = (await sign()).split('.');
    const forged = b64({
      ...clinicClaims(),
      [CLAIMS.role]: 'registry-admin',
      iss: config.auth.issuer,
      aud: config.auth.audience,
      exp: now() + 600,
    });
    expect(await rejection(authenticate, `Bearer ${header}.${forged}.${signature}`)).toEqual([
      401,
      'Token rejected: its signature is invalid',
    ]);
  });

  test.each([
    [
      'an unknown role',
      { [CLAIMS.role]: 'superuser' },
      'token claim norpain_role must be one of clinic, portal',
    ],
    [
      'a clinic without organisation',
      { [CLAIMS.organization]: undefined },
      'a clinic token needs the norpain_resh claim',
    ],
    [
      'a portal without pid',
      { [CLAIMS.role]: 'portal' },
      'a portal token needs the helseid://claims/identity/pid claim',
    ],
    [
      'a portal whose pid is no national id',
      { [CLAIMS.role]: 'portal', [CLAIMS.pid]: '0181804007' },
      'token claim helseid://claims/identity/pid must be a valid fødselsnummer, D-number or felles hjelpenummer: must be exactly 11 digits',
    ],
    [
      'a researcher without study',
      { [CLAIMS.role]: 'researcher' },
      'a researcher token needs the norpain_study claim',
    ],
    ['a malformed scope', { scope: 42 }, 'token claim scope must be'],
  ])('a valid signature with %s is rejected', async (_name, change, message) => {
    const claims = { ...clinicClaims(), ...change } as JWTPayload;
    const [status, text] = await rejection(authenticate, `Bearer ${await sign(claims)}`);
    expect(status).toBe(401);
    expect(text).toContain(message);
  });
});

describe('configured keys (production style)', () => {
  test('AUTH_PUBLIC_KEY_FILE with a PEM key: RS256 from that key passes, other keys and the dev key do not', async () => {
    const dir = tempDir();
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const keyFile = path.join(dir, 'issuer.pem');
    fs.writeFileSync(keyFile, await exportSPKI(publicKey));
    const config = loadConfig({
      NODE_ENV: 'production',
      PUBLIC_BASE_URL: 'https://norpain.example.no/fhir',
      DATA_DIR: dir,
      AUTH_ISSUER: 'https://helseid-sts.test.nhn.no',
      AUTH_AUDIENCE: 'nhn:norpain',
      AUTH_PUBLIC_KEY_FILE: keyFile,
    });
    const authenticate = createAuthenticator(config, quiet);
    const claims = { [CLAIMS.role]: 'registry-admin', client_id: 'registry-ui' };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://helseid-sts.test.nhn.no')
      .setAudience('nhn:norpain')
      .setExpirationTime('5m')
      .sign(privateKey);
    await expect(authenticate({ headers: { authorization: `Bearer ${token}` } })).resolves.toMatchObject({
      role: 'registry-admin',
      clientId: 'registry-ui',
    });
    // Production has no synthetic people: a portal token for one names nobody.
    const synthetic = await new SignJWT({
      ...claims,
      [CLAIMS.role]: 'portal',
      [CLAIMS.pid]: syntheticNationalId(),
    })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://helseid-sts.test.nhn.no')
      .setAudience('nhn:norpain')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect(await rejection(authenticate, `Bearer ${synthetic}`)).toEqual([
      401,
      'Token rejected: token claim helseid://claims/identity/pid must be a valid fødselsnummer, D-number or felles hjelpenummer: it is a synthetic test number, which production does not accept',
    ]);
    const other = await generateKeyPair('RS256');
    const foreign = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://helseid-sts.test.nhn.no')
      .setAudience('nhn:norpain')
      .setExpirationTime('5m')
      .sign(other.privateKey);
    expect((await rejection(authenticate, `Bearer ${foreign}`))[1]).toBe(
      'Token rejected: its signature is invalid',
    );
    // Production never creates or trusts a dev key, and `norpain token` refuses to sign.
    expect(fs.existsSync(path.join(dir, 'keys'))).toBe(false);
    await expect(issueDevToken(config, { role: 'registry-admin' })).rejects.toThrow(
      /only trusted by a development/,
    );
  });

  test('AUTH_JWKS_URL: keys are fetched over HTTP; an unreachable issuer gives 503', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwksServer = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const port = (jwksServer.address() as AddressInfo).port;
    const env = {
      NODE_ENV: 'production',
      PUBLIC_BASE_URL: 'https://norpain.example.no/fhir',
      DATA_DIR: tempDir(),
      AUTH_ISSUER: 'https://issuer.example',
      AUTH_AUDIENCE: 'norpain',
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks`,
    };
    const token = await new SignJWT({
      [CLAIMS.role]: 'researcher',
      [CLAIMS.study]: 'rs-1',
      sub: 'researcher-1',
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('https://issuer.example')
      .setAudience('norpain')
      .setExpirationTime('5m')
      .sign(privateKey);
    try {
      const authenticate = createAuthenticator(loadConfig(env), quiet);
      await expect(authenticate({ headers: { authorization: `Bearer ${token}` } })).resolves.toMatchObject({
        role: 'researcher',
        study: 'rs-1',
        clientId: 'researcher-1',
      });
    } finally {
      await new Promise((resolve) => jwksServer.close(resolve));
    }
    const unreachable = createAuthenticator(loadConfig(env), quiet);
    const [status, text] = await rejection(unreachable, `Bearer ${token}`);
    expect(status).toBe(503);
    expect(text).toContain('cannot be fetched');
  });
});
