import { containsNationalId, redactNationalIdsWith } from '../identity/nationalId';

/**
 * Defence in depth for rule 3.4: an audit entry never contains a national id. Callers are meant to pass
 * only pseudonyms (and redact what a client chose, see `redactedForAudit`), but a mistake (a raw query
 * string, a client-chosen id, a principal's `pid`) must be refused here rather than written into a log
 * that can never be changed. What looks like a national id is decided by the one detector,
 * `findNationalIds` in src/identity/nationalId.ts.
 */

/** A value a client chose (a token claim, a request id), as an audit entry may hold it. */
export function redactedForAudit(value: string): string {
  return redactNationalIdsWith(value);
}

/** Thrown when an audit entry would carry a national id. A programming error, never a client error. */
export class AuditIdentifierError extends Error {
  constructor(readonly path: string) {
    super(`refusing to audit: the value at ${path} looks like a national id`);
    this.name = 'AuditIdentifierError';
  }
}

/** Walks every string (and number) in the value and throws AuditIdentifierError naming the first path
 * that looks like a national id. The message names the path only, never the value. */
export function assertNoNationalId(value: unknown, path = '$'): void {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
    if (containsNationalId(String(value))) {
      throw new AuditIdentifierError(path);
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => assertNoNationalId(item, `${path}[${i}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (containsNationalId(key)) {
        throw new AuditIdentifierError(`${path} (a key)`);
      }
      assertNoNationalId(item, `${path}.${key}`);
    }
  }
}
