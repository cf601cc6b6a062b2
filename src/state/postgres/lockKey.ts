import { createHash } from 'node:crypto';

/**
 * The 64-bit key of a PostgreSQL advisory lock for a name (a person key, "audit chain", a migration
 * run): the first 8 bytes of its SHA-256, as the signed decimal PostgreSQL's bigint takes. Two names
 * sharing a key only ever wait for each other, never pass each other.
 */
export function advisoryKey(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest().readBigInt64BE(0).toString();
}
