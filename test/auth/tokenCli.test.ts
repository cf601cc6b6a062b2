import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { norpain } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/testServer';

/** `norpain token` with the claims of issue 6 (org, HPR, scopes) and `--dpop-jkt` binding to a client key. */

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.stop();
});

test('--dpop-jkt binds the token: the server then wants DPoP, and the claims reach the principal', async () => {
  const { publicKey } = await generateKeyPair('ES256');
  const jkt = await calculateJwkThumbprint(await exportJWK(publicKey));
  const result = norpain(
    [
      'token',
      '--role',
      'clinic',
      '--org',
      '999002',
      '--hpr',
      '1234567',
      '--scope',
      'system/QuestionnaireResponse.c',
      `--dpop-jkt=${jkt}`, // a thumbprint may begin with "-", which a separate argument cannot
    ],
    { NODE_ENV: 'development', DATA_DIR: server.dataDir },
  );
  expect(result.stderr).toBe('');
  const token = result.stdout.trim();
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  expect(payload).toMatchObject({
    norpain_role: 'clinic',
    norpain_resh: '999002',
    'helseid://claims/hpr/hpr_number': '1234567',
    scope: 'system/QuestionnaireResponse.c',
    cnf: { jkt },
  });
  const reply = await fetch(`${server.baseUrl}/Questionnaire`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(reply.status).toBe(401);
  expect(reply.headers.get('www-authenticate')).toMatch(/^DPoP /);
});

test('--dpop-jkt must be a thumbprint', () => {
  const result = norpain(['token', '--role', 'registry-admin', '--dpop-jkt', 'nope'], {
    NODE_ENV: 'development',
    DATA_DIR: server.dataDir,
  });
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain('--dpop-jkt must be a JWK SHA-256 thumbprint');
});
