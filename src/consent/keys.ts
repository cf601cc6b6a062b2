import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/ConfigError';
import { readSecret, type Env } from '../config/secrets';

/**
 * The key of the reservation register's keyed hashes (DESIGN §3.2). It is a key of its own, not the
 * pseudonym key: the register must keep working (and keep people out) when pseudonym keys are rotated,
 * and a leaked register must not be joinable with the clinical store. Same pattern as the identity keys:
 * `RESERVATION_KEY` or `RESERVATION_KEY_FILE` (32 random bytes, base64 or 64 hex digits); required in
 * production, created under DATA_DIR/keys on first start in development.
 */
export function loadReservationKey(options: {
  env: Env;
  production: boolean;
  dataDir: string;
  onCreated?: (message: string, file: string) => void;
}): Buffer {
  let text = readSecret(options.env, 'RESERVATION_KEY');
  if (text === undefined) {
    if (options.production) {
      throw new ConfigError('RESERVATION_KEY (or RESERVATION_KEY_FILE) must be set in production');
    }
    const file = path.join(options.dataDir, 'keys', 'reservation-key');
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      try {
        fs.writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
        options.onCreated?.(
          'Created a development reservation key; configure a real key for production',
          file,
        );
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
    throw new ConfigError('RESERVATION_KEY must be 32 random bytes, base64 or hex encoded');
  }
  return key;
}
