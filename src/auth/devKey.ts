import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { JWK } from 'jose';

/**
 * The development signing key: an ES256 key pair the dev server trusts and `norpain token` signs with.
 * It lives under DATA_DIR/keys (directory 0700, file 0600) and is created on first use. Production
 * never uses it: there tokens come from the configured issuer (HelseID).
 */
export interface DevSigningKey {
  alg: 'ES256';
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

export function devKeyPath(dataDir: string): string {
  return path.join(dataDir, 'keys', 'dev-signing-key.json');
}

/** Loads the dev key, creating it if absent. `created` tells the caller to log that it did. */
export function ensureDevSigningKey(dataDir: string): { key: DevSigningKey; created: boolean } {
  const file = devKeyPath(dataDir);
  const existing = readKey(file);
  if (existing !== undefined) {
    return { key: existing, created: false };
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = crypto.randomBytes(12).toString('base64url');
  const privateJwk = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg: 'ES256', use: 'sig' };
  // Write a private temp file, then link it into place: link fails if another process (the CLI and the
  // server starting together) won the race, and no one ever reads a half-written key.
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(privateJwk, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw err;
    }
  } finally {
    fs.unlinkSync(tmp);
  }
  const key = readKey(file);
  if (key === undefined) {
    throw new Error('development signing key vanished after creation');
  }
  return { key, created: key.kid === kid };
}

function readKey(file: string): DevSigningKey | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw err;
  }
  const privateJwk = JSON.parse(text) as JWK;
  if (privateJwk.kty !== 'EC' || privateJwk.d === undefined || privateJwk.kid === undefined) {
    throw new Error(`${file} is not an EC private JWK with a kid; delete it to create a new dev key`);
  }
  const { d: _d, ...publicJwk } = privateJwk;
  return { alg: 'ES256', kid: privateJwk.kid, privateJwk, publicJwk };
}
