import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './ConfigError';

export type Env = Record<string, string | undefined>;

/**
 * Reads a setting that may be a secret: either `NAME` itself or the contents of the file named by
 * `NAME_FILE` (Docker/Kubernetes secrets), trailing newline removed. Setting both is refused, because
 * the operator would not know which one wins. Returns undefined when neither is set.
 */
export function readSecret(env: Env, name: string): string | undefined {
  const direct = nonEmpty(env[name]);
  const file = nonEmpty(env[`${name}_FILE`]);
  if (direct !== undefined && file !== undefined) {
    throw new ConfigError(`Set either ${name} or ${name}_FILE, not both`);
  }
  if (file === undefined) {
    return direct;
  }
  let content: string;
  try {
    content = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${name}_FILE names a file that cannot be read (${code}): ${file}`);
  }
  const value = content.replace(/\r?\n$/, '');
  if (value === '') {
    throw new ConfigError(`${name}_FILE names an empty file: ${file}`);
  }
  return value;
}

/** Unset and empty are the same to an operator writing `FOO=` in an env file. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/**
 * A 32-byte key of its own (the reservation register's, the research key): `NAME` or `NAME_FILE`, base64
 * or 64 hex digits; required in production, created under DATA_DIR/keys/`devFile` on first start in
 * development (told through `onCreated`, never with the key).
 */
export function loadKey(
  name: string,
  devFile: string,
  options: {
    env: Env;
    production: boolean;
    dataDir: string;
    onCreated?: (message: string, file: string) => void;
  },
): Buffer {
  let text = readSecret(options.env, name);
  if (text === undefined) {
    if (options.production) {
      throw new ConfigError(`${name} (or ${name}_FILE) must be set in production`);
    }
    const file = path.join(options.dataDir, 'keys', devFile);
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // 'wx' fails if another process created it meanwhile; then we read theirs.
      try {
        fs.writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
        options.onCreated?.(`Created a development ${devFile}; configure ${name} for production`, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw err;
        }
      }
    }
    text = fs.readFileSync(file, 'utf8');
  }
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new ConfigError(`${name} must be 32 random bytes, base64 or hex encoded`);
  }
  return key;
}
