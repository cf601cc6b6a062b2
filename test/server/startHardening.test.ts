import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { importJWK, SignJWT } from 'jose';
import { CLAIMS } from '../../src/auth/claims';
import { ensureDevSigningKey } from '../../src/auth/devKey';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * Issue 11, the smaller items at the edge of the server: a DATA_DIR that existed with loose permissions
 * is made private at start (folders 0700, files 0600), and a token issued in the future (beyond the
 * clock skew) is refused over HTTP.
 */

/** Every path under dir (dir included) with its permission bits, symbolic links left out. */
function modes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const visit = (target: string): void => {
    const stat = fs.lstatSync(target);
    if (stat.isSymbolicLink()) return;
    out.set(path.relative(dir, target) || '.', stat.mode & 0o777);
    if (stat.isDirectory()) fs.readdirSync(target).forEach((name) => visit(path.join(target, name)));
  };
  visit(dir);
  return out;
}

describe('DATA_DIR permissions', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-modes-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a world-readable DATA_DIR from an earlier run is private again after a start', async () => {
    const first = await startTestServer({ DATA_DIR: dir });
    const token = await first.token('registry-admin');
    const written = await fetch(`${first.baseUrl}/Patient`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(written.status).toBe(200);
    await first.server.close();
    // As a restore from backup or a hand-made folder might leave it: everything readable by all.
    fs.mkdirSync(path.join(dir, 'restored'), { mode: 0o777 });
    fs.writeFileSync(path.join(dir, 'restored', 'notes.txt'), 'x', { mode: 0o666 });
    for (const [relative] of modes(dir)) {
      const target = path.join(dir, relative);
      fs.chmodSync(target, fs.statSync(target).isDirectory() ? 0o755 : 0o644);
    }
    expect([...modes(dir).values()].every((mode) => mode === 0o755 || mode === 0o644)).toBe(true);

    let second: TestServer | undefined;
    try {
      second = await startTestServer({ DATA_DIR: dir });
      const found = modes(dir);
      expect(found.size).toBeGreaterThan(5);
      for (const [relative, mode] of found) {
        const expected = fs.statSync(path.join(dir, relative)).isDirectory() ? 0o700 : 0o600;
        expect({ relative, mode: mode.toString(8) }).toEqual({ relative, mode: expected.toString(8) });
      }
    } finally {
      await second?.server.close();
    }
  }, 60_000);
});

describe('token issue time', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  async function tokenIssuedAt(iat: number): Promise<string> {
    const { key } = ensureDevSigningKey(server.dataDir);
    return new SignJWT({
      [CLAIMS.role]: 'registry-admin',
      client_id: 'staff-test',
      scope: 'user/*.cruds',
    })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(server.config.auth.issuer)
      .setAudience(server.config.auth.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(await importJWK(key.privateJwk, 'ES256'));
  }

  async function status(token: string): Promise<[number, string]> {
    const reply = await fetch(`${server.baseUrl}/Questionnaire`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return [reply.status, await reply.text()];
  }

  test('iat an hour ahead is refused with 401 saying why; within the skew it is accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const [refused, body] = await status(await tokenIssuedAt(now + 3600));
    expect(refused).toBe(401);
    expect(body).toContain('its issue time (iat) is in the future');
    expect((await status(await tokenIssuedAt(now + 2)))[0]).toBe(200);
    expect((await status(await tokenIssuedAt(now - 60)))[0]).toBe(200);
  });
});
