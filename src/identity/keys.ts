import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/ConfigError';
import { readSecret, type Env } from '../config/secrets';
import type { PseudonymKeyring } from './pseudonym';

/**
 * Where the identity keys come from (DESIGN §4): the pseudonym keys (HMAC, versioned, rotated by
 * re-keying) and the vault key (AES-256-GCM), which must differ. In production both must be configured
 * (`PSEUDONYM_KEYS` / `PSEUDONYM_KEY` and `VAULT_KEY`, or their `*_FILE` forms); the server refuses to
 * start without them. In development they are created under DATA_DIR/keys on first start.
 *
 * Formats: a key is base64 (or 64 hex digits) of 32 random bytes. `PSEUDONYM_KEYS` lists versions as
 * `1:<key>,2:<key>` (commas or newlines); the highest is current unless `PSEUDONYM_KEY_VERSION` says
 * otherwise. `PSEUDONYM_KEY` is shorthand for version 1 alone.
 */
export interface IdentityKeys {
  pseudonym: PseudonymKeyring;
  vault: Buffer;
}

export interface LoadKeysOptions {
  env: Env;
  production: boolean;
  dataDir: string;
  /** Told when development keys are created (never given the key). */
  onCreated?: (message: string, file: string) => void;
}

export const devKeyFiles = (dataDir: string) => ({
  pseudonym: path.join(dataDir, 'keys', 'pseudonym-keys'),
  vault: path.join(dataDir, 'keys', 'vault-key'),
});

export function loadIdentityKeys(options: LoadKeysOptions): IdentityKeys {
  const { env, production, dataDir } = options;
  let pseudonymText = readSecret(env, 'PSEUDONYM_KEYS');
  const single = readSecret(env, 'PSEUDONYM_KEY');
  if (pseudonymText !== undefined && single !== undefined) {
    throw new ConfigError('Set either PSEUDONYM_KEYS or PSEUDONYM_KEY, not both');
  }
  if (single !== undefined) {
    pseudonymText = `1:${single}`;
  }
  let vaultText = readSecret(env, 'VAULT_KEY');
  const files = devKeyFiles(dataDir);
  if (pseudonymText === undefined) {
    if (production) {
      throw new ConfigError('PSEUDONYM_KEYS (or PSEUDONYM_KEYS_FILE) must be set in production');
    }
    pseudonymText = readOrCreateDevKey(files.pseudonym, () => `1:${newKey()}\n`, options.onCreated);
  }
  if (vaultText === undefined) {
    if (production) {
      throw new ConfigError('VAULT_KEY (or VAULT_KEY_FILE) must be set in production');
    }
    vaultText = readOrCreateDevKey(files.vault, () => `${newKey()}\n`, options.onCreated);
  }
  const pseudonym = parseKeyring(pseudonymText, env.PSEUDONYM_KEY_VERSION);
  const vault = decodeKey(vaultText.trim(), 'VAULT_KEY');
  for (const key of pseudonym.keys.values()) {
    if (key.equals(vault)) {
      throw new ConfigError('VAULT_KEY must differ from every pseudonym key');
    }
  }
  return { pseudonym, vault };
}

function newKey(): string {
  return randomBytes(32).toString('base64');
}

/** Development only: adds a new pseudonym key version to the dev key file and returns its number. */
export function addDevPseudonymKeyVersion(dataDir: string): number {
  const file = devKeyFiles(dataDir).pseudonym;
  const keyring = parseKeyring(fs.readFileSync(file, 'utf8'), undefined);
  const version = Math.max(...keyring.keys.keys()) + 1;
  fs.appendFileSync(file, `${version}:${newKey()}\n`, { mode: 0o600 });
  return version;
}

function readOrCreateDevKey(
  file: string,
  create: () => string,
  onCreated: LoadKeysOptions['onCreated'],
): string {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // 'wx' fails if another process created it meanwhile; then we read theirs.
    try {
      fs.writeFileSync(file, create(), { mode: 0o600, flag: 'wx' });
      onCreated?.('Created a development identity key; configure real keys for production', file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw err;
      }
    }
  }
  return fs.readFileSync(file, 'utf8');
}

function parseKeyring(text: string, currentText: string | undefined): PseudonymKeyring {
  const keys = new Map<number, Buffer>();
  for (const part of text.split(/[,\n]/)) {
    const entry = part.trim();
    if (entry === '') {
      continue;
    }
    const match = /^(\d+):(.+)$/.exec(entry);
    if (!match) {
      throw new ConfigError('PSEUDONYM_KEYS entries must look like <version>:<base64 key>');
    }
    const version = Number(match[1]);
    if (version < 1 || keys.has(version)) {
      throw new ConfigError('PSEUDONYM_KEYS versions must be positive and unique');
    }
    keys.set(version, decodeKey(match[2].trim(), `PSEUDONYM_KEYS version ${version}`));
  }
  if (keys.size === 0) {
    throw new ConfigError('PSEUDONYM_KEYS holds no key');
  }
  const current = currentText?.trim() ? Number(currentText) : Math.max(...keys.keys());
  if (!keys.has(current)) {
    throw new ConfigError('PSEUDONYM_KEY_VERSION names a version that PSEUDONYM_KEYS does not hold');
  }
  return { current, keys };
}

function decodeKey(text: string, name: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) {
    throw new ConfigError(`${name} must be 32 random bytes, base64 or hex encoded`);
  }
  return key;
}
