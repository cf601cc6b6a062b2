import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, DEV_AUDIENCE, DEV_ISSUER, loadConfig, readSecret } from '../../src/config';

/** The message loadConfig gives for this environment, or undefined when it accepts it. */
function problem(env: Record<string, string>): string | undefined {
  try {
    loadConfig(env);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
}

describe('configuration from the environment', () => {
  test('defaults: port 8080, ./data, development, embedded store, 5 MB bodies, dev issuer', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe(path.resolve('data'));
    expect(config.mode).toBe('development');
    expect(config.store).toEqual({ kind: 'embedded' });
    expect(config.maxBodyBytes).toBe(5 * 1024 * 1024);
    expect(config.auth).toMatchObject({
      issuer: DEV_ISSUER,
      audience: DEV_AUDIENCE,
      algorithms: ['RS256', 'ES256'],
      useDevKey: true,
    });
    expect(config.logLevel).toBe('info');
  });

  test('values are read and normalised', () => {
    const config = loadConfig({
      PORT: '9090',
      DATA_DIR: '/tmp/x',
      NODE_ENV: 'development',
      STORE: 'hapi',
      HAPI_URL: 'http://localhost:8090/fhir/',
      MAX_BODY_BYTES: '2mb',
      PUBLIC_BASE_URL: 'https://norpain.example.no/fhir/',
      LOG_LEVEL: 'warn',
      AUTH_ALGORITHMS: 'PS256, ES384',
    });
    expect(config).toMatchObject({
      port: 9090,
      dataDir: '/tmp/x',
      mode: 'development',
      store: { kind: 'hapi', url: 'http://localhost:8090/fhir' },
      maxBodyBytes: 2 * 1024 * 1024,
      publicBaseUrl: 'https://norpain.example.no/fhir',
      logLevel: 'warn',
    });
    expect(config.auth.algorithms).toEqual(['PS256', 'ES384']);
  });

  test.each([
    [{ PORT: 'abc' }, 'PORT must be an integer 1-65535, got "abc"'],
    [{ PORT: '70000' }, 'PORT must be an integer 1-65535, got "70000"'],
    [{ PORT: '80.5' }, 'PORT must be an integer 1-65535, got "80.5"'],
    [{ STORE: 'mongo' }, 'STORE must be one of embedded, hapi, got "mongo"'],
    [{ STORE: 'hapi' }, 'HAPI_URL must be set when STORE=hapi'],
    [{ HAPI_URL: 'localhost:8090' }, 'HAPI_URL must be an absolute http(s) URL, got "localhost:8090"'],
    [{ PUBLIC_BASE_URL: 'ftp://x/fhir' }, 'PUBLIC_BASE_URL must be an absolute http(s) URL'],
    [{ MAX_BODY_BYTES: 'lots' }, 'MAX_BODY_BYTES must be a size from 1kb to 1024mb'],
    [{ MAX_BODY_BYTES: '10' }, 'MAX_BODY_BYTES must be a size from 1kb to 1024mb'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be one of debug, info, warn, error, silent, got "loud"'],
    [{ AUTH_ALGORITHMS: 'RS256,HS256' }, 'AUTH_ALGORITHMS may only list asymmetric algorithms'],
    [{ AUTH_ALGORITHMS: 'none' }, 'got "none"'],
    [{ AUTH_JWKS_URL: 'https://a/jwks', AUTH_PUBLIC_KEY_FILE: '/k.pem' }, 'Set either AUTH_JWKS_URL or'],
    [
      { AUTH_PUBLIC_KEY_FILE: '/nonexistent/key.pem' },
      'AUTH_PUBLIC_KEY_FILE names a file that does not exist',
    ],
    [{ UNITS_FILE: '/nonexistent/units.json' }, 'UNITS_FILE names a file that does not exist'],
    [{ NODE_ENV: 'prod' }, 'NODE_ENV must be one of development, production, got "prod"'],
    [{ NODE_ENV: 'test' }, 'NODE_ENV must be one of development, production, got "test"'],
    [{ NODE_ENV: 'Production' }, 'NODE_ENV must be one of development, production, got "Production"'],
  ])('%j is refused with a message naming the variable', (env, message) => {
    expect(problem(env)).toContain(message);
  });

  test('production refuses to start without an issuer, audience and keys, and says which are missing', () => {
    expect(problem({ NODE_ENV: 'production' })).toBe(
      'Production mode (NODE_ENV=production) needs token verification configured: ' +
        'set AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE',
    );
    expect(
      problem({
        NODE_ENV: 'production',
        AUTH_ISSUER: 'https://helseid-sts.nhn.no',
        AUTH_AUDIENCE: 'norpain',
      }),
    ).toContain('set AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE');
    expect(
      problem({
        NODE_ENV: 'production',
        AUTH_ISSUER: 'https://helseid-sts.nhn.no',
        AUTH_AUDIENCE: 'nhn:norpain',
        AUTH_JWKS_URL: 'https://helseid-sts.nhn.no/.well-known/openid-configuration/jwks',
      }),
    ).toBe(
      'Production mode (NODE_ENV=production) needs PUBLIC_BASE_URL, the FHIR base as clients see it (e.g. https://norpain.example.no/fhir)',
    );
    const config = loadConfig({
      NODE_ENV: 'production',
      PUBLIC_BASE_URL: 'https://norpain.example.no/fhir',
      AUTH_ISSUER: 'https://helseid-sts.nhn.no',
      AUTH_AUDIENCE: 'nhn:norpain',
      AUTH_JWKS_URL: 'https://helseid-sts.nhn.no/.well-known/openid-configuration/jwks',
    });
    expect(config.mode).toBe('production');
    expect(config.auth.useDevKey).toBe(false);
  });

  describe('readSecret and *_FILE variants', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-secret-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test('reads NAME, or the file NAME_FILE names without its trailing newline', () => {
      const file = path.join(dir, 'issuer');
      fs.writeFileSync(file, 'https://issuer.example\n');
      expect(readSecret({ X: 'direct' }, 'X')).toBe('direct');
      expect(readSecret({ X_FILE: file }, 'X')).toBe('https://issuer.example');
      expect(readSecret({}, 'X')).toBeUndefined();
      expect(loadConfig({ AUTH_ISSUER_FILE: file }).auth.issuer).toBe('https://issuer.example');
    });

    test('both set, unreadable or empty files are refused by name', () => {
      const empty = path.join(dir, 'empty');
      fs.writeFileSync(empty, '');
      expect(() => readSecret({ X: 'a', X_FILE: empty }, 'X')).toThrow('Set either X or X_FILE, not both');
      expect(() => readSecret({ X_FILE: path.join(dir, 'missing') }, 'X')).toThrow(
        /X_FILE names a file that cannot be read \(ENOENT\)/,
      );
      expect(() => readSecret({ X_FILE: empty }, 'X')).toThrow('X_FILE names an empty file');
    });
  });
});
