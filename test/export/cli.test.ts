import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { people } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { submitPerson } from './bulk';
import { newKeyPair, registerClient } from './clients';

/** `norpain export` as a bulk client runs it: a registered client's key, kick-off, poll, download. */

const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');

/** The real command in a child process (asynchronously: the server answers from this process). */
function norpain(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir() },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `norpain export` of this server into `out` as the registered client, with its key file. */
function exportAs(out: string, key: string, ...more: string[]) {
  return norpain([
    'export',
    '--url',
    server.baseUrl,
    '--out',
    out,
    '--client-id',
    'registry-analyst',
    '--key',
    key,
    ...more,
  ]);
}

let server: TestServer;
let work: string;
let keyFile: string;

beforeAll(async () => {
  server = await startTestServer();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-export-cli-'));
  for (const [i, fnr] of people(99, 3).entries()) {
    await submitPerson(server, fnr, 'R52', ['A0' + i]);
  }
  const client = await registerClient(server.dataDir, {
    clientId: 'registry-analyst',
    role: 'registry-admin',
  });
  keyFile = path.join(work, 'client-key.json');
  fs.writeFileSync(keyFile, JSON.stringify(client.privateJwk), { mode: 0o600 });
});

afterAll(async () => {
  await server.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

test('runs the whole flow with a client key and writes the files and the manifest', async () => {
  const out = path.join(work, 'out');
  const result = await exportAs(out, keyFile, '--type', 'Patient,Condition');
  expect(result.stderr).toMatch(/export started/);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/Patient: 3 resources in 1 file/);
  expect(result.stdout).toMatch(/Condition: 3 resources in 1 file/);
  const lines = (file: string) => fs.readFileSync(path.join(out, file), 'utf8').trim().split('\n');
  expect(
    lines('Patient-1.ndjson').map((l) => (JSON.parse(l) as { resourceType: string }).resourceType),
  ).toEqual(['Patient', 'Patient', 'Patient']);
  expect(lines('Condition-1.ndjson')).toHaveLength(3);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
    output: unknown[];
  };
  expect(manifest.output).toHaveLength(2);
});

test('a key the client is not registered with: the OAuth error, exit 1, no files', async () => {
  const wrongKey = path.join(work, 'wrong-key.json');
  fs.writeFileSync(wrongKey, JSON.stringify((await newKeyPair()).privateJwk));
  const out = path.join(work, 'refused');
  const result = await exportAs(out, wrongKey);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/invalid_client/);
  expect(fs.existsSync(out)).toBe(false);
});

test('a kick-off the server refuses: its OperationOutcome text, exit 1', async () => {
  const result = await norpain([
    'export',
    '--url',
    server.baseUrl,
    '--out',
    path.join(work, 'x'),
    '--token',
    await server.token('registry-admin'),
    '--type',
    'AuditEvent',
  ]);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/answered 400: A _type asked for is not in this export/);
});

test('neither a key nor a token: usage error, exit 2', async () => {
  const result = await norpain(['export', '--url', server.baseUrl, '--out', path.join(work, 'y')]);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/--client-id with --key, or --token/);
});
