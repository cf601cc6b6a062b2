import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { norpain } from '../helpers/cli';
import { startTestServer, SYNTHETIC_FNR, type TestServer } from '../helpers/testServer';

const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');

describe('norpain token', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  test('prints a token the development server with the same DATA_DIR accepts', async () => {
    const result = norpain(['token', '--role', 'portal', '--pid', SYNTHETIC_FNR, '--expires', '10m'], {
      DATA_DIR: server.dataDir,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const token = result.stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const response = await fetch(`${server.baseUrl}/Patient`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
    });
    expect(response.status).not.toBe(401);
    expect(response.status).toBeLessThan(500);
    const principal = await server.server.authenticate({ headers: { authorization: `Bearer ${token}` } });
    expect(principal).toMatchObject({ role: 'portal', pid: SYNTHETIC_FNR, clientId: 'norpain-dev-portal' });
  });

  test('--scope, --study and --hpr reach the token', async () => {
    const result = norpain(
      [
        'token',
        '--role',
        'researcher',
        '--study',
        'rs-2025-1',
        '--hpr',
        '9144889',
        '--scope',
        'user/Observation.rs',
        '--scope',
        'user/Patient.rs',
      ],
      { DATA_DIR: server.dataDir },
    );
    expect(result.code).toBe(0);
    const principal = await server.server.authenticate({
      headers: { authorization: `Bearer ${result.stdout.trim()}` },
    });
    expect(principal).toMatchObject({
      role: 'researcher',
      study: 'rs-2025-1',
      hpr: '9144889',
      scopes: ['user/Observation.rs', 'user/Patient.rs'],
    });
  });

  test.each([
    [['token'], '--role must be one of clinic, portal, registry-admin, researcher'],
    [
      ['token', '--role', 'admin'],
      '--role must be one of clinic, portal, registry-admin, researcher, got "admin"',
    ],
    [['token', '--role', 'clinic'], 'a clinic token needs --org'],
    [
      ['token', '--role', 'registry-admin', '--expires', 'forever'],
      '--expires must look like 90s, 30m, 1h or 2d',
    ],
    [['token', '--role', 'registry-admin', '--colour', 'red'], "Unknown option '--colour'"],
  ])('norpain %j is a usage error', (args, message) => {
    const result = norpain(args, { DATA_DIR: server.dataDir });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('usage: norpain token --role ROLE');
  });

  test('refuses in production mode, where tokens come from the real issuer', () => {
    const keyFile = path.join(server.dataDir, 'not-used.pem');
    fs.writeFileSync(keyFile, 'x');
    const result = norpain(['token', '--role', 'registry-admin'], {
      DATA_DIR: server.dataDir,
      NODE_ENV: 'production',
      PUBLIC_BASE_URL: 'https://norpain.example.no/fhir',
      AUTH_ISSUER: 'https://issuer.example',
      AUTH_AUDIENCE: 'norpain',
      AUTH_PUBLIC_KEY_FILE: keyFile,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('norpain token issues development tokens only');
  });
});

describe('norpain commands', () => {
  test('no command or an unknown one prints the usage', () => {
    const none = norpain([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('usage: norpain <command>');
    const unknown = norpain(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('norpain: unknown command "frobnicate"');
    expect(unknown.stderr).toMatch(/serve\s+run the FHIR server/);
    expect(unknown.stderr).toMatch(/token\s+print a development access token/);
    expect(norpain(['help', 'token']).stdout).toContain('--expires');
  });

  test.each([
    [{ PORT: 'abc' }, 'norpain: configuration error: PORT must be an integer 1-65535, got "abc"\n'],
    [
      { NODE_ENV: 'production' },
      'norpain: configuration error: Production mode (NODE_ENV=production) needs token verification configured: ' +
        'set AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE\n',
    ],
    [
      { NODE_ENV: 'prod' },
      'norpain: configuration error: NODE_ENV must be one of development, production, got "prod"\n',
    ],
  ])('serve with %j stops with one line naming the variable, no stack trace', (env, message) => {
    const result = norpain(['serve'], {
      DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-cli-')),
      ...env,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(message);
  });

  test('serve starts, answers, and shuts down cleanly on SIGTERM', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-cli-'));
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('"msg":"listening"')) {
            resolve();
          }
        });
        void exited.then(() => reject(new Error(`serve exited early: ${stderr}`)));
      });
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string });
    const messages = lines.map((line) => line.msg);
    expect(messages[0]).toBe('starting');
    expect(messages).toContain(
      'created development token signing key; tokens from `norpain token` are trusted',
    );
    expect(messages).toContain('participating units loaded');
    expect(messages.slice(-4)).toEqual(['listening', 'request', 'shutting down', 'stopped']);
    expect(stderr).toBe('');
    // The key material itself is never logged.
    expect(stdout).not.toContain('"d":');
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
