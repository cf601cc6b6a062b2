import { checkDigitsValid } from '../identity/nationalId';

/**
 * Defence in depth for rule 3.4: an audit entry never contains a national id. Callers are meant to pass
 * only pseudonyms, but a mistake (a raw query string, a client-chosen id, a principal's `pid`) must be
 * refused here rather than written into a log that can never be changed.
 *
 * The check is deliberately wider than a full fødselsnummer validation: any standalone run of 11 digits
 * whose two mod-11 check digits hold (with the 2032 rule's four admissible K1 values) is refused. That
 * covers FNR, D-, H- and synthetic numbers and felles hjelpenummer (which carry no date), without
 * depending on the date part.
 */

/**
 * Runs of 11 digits that stand alone: not part of a longer number and not glued to letters, so that
 * hexadecimal ids (a UUID's last group can be a letter and 11 digits) and base64url pseudonyms do not
 * trip the guard; also the common "DDMMYY NNNNN" spelling.
 */
const CANDIDATE = /(?<![0-9A-Za-z])(\d{6})[ -]?(\d{5})(?![0-9A-Za-z])/g;

/**
 * A fast over-approximation for serialised JSON: false means no string or number in it can contain a
 * national id (JSON escapes neither digits, spaces nor hyphens, so every candidate survives serialising).
 */
export function mayContainNationalId(json: string): boolean {
  return /\d{6}[ -]?\d{5}/.test(json);
}

/** True when the text contains something that could be a Norwegian national person identifier. */
export function containsNationalId(text: string): boolean {
  for (const match of text.matchAll(CANDIDATE)) {
    if (checkDigitsValid(match[1] + match[2])) {
      return true;
    }
  }
  return false;
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
