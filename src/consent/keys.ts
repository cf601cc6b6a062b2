import { loadKey, type Env } from '../config/secrets';

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
  return loadKey('RESERVATION_KEY', 'reservation-key', options);
}
