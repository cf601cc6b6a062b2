import { createHmac } from 'node:crypto';

/**
 * Registry pseudonyms and keyed hashes of business identifiers (DESIGN §4).
 *
 * A pseudonym is `<version>-<base64url(HMAC-SHA-256(key_version, canonical national id))>`: the key
 * version travels in the value so that keys can be rotated by re-keying (`norpain rekey`), and any
 * pseudonym tells which key made it. Business identifiers (episode numbers and the like) become
 * `h<version>-<base64url(HMAC(key, "identifier" system value))>`: they cannot be re-keyed (the original
 * is gone), so a conditional query is hashed under every configured version and matches either.
 */
export interface PseudonymKeyring {
  /** The version new pseudonyms and hashes are made with. */
  current: number;
  keys: ReadonlyMap<number, Buffer>;
}

export const registryPseudonymSystem = 'https://norpain.no/fhir/NamingSystem/registry-pseudonym';

/** Pseudonyms and hashes are byte strings under different labels, so one can never equal the other. */
const PERSON_LABEL = 'person\u0000';
const IDENTIFIER_LABEL = 'identifier\u0000';

export class Pseudonymiser {
  constructor(readonly keyring: PseudonymKeyring) {
    if (!keyring.keys.has(keyring.current)) {
      throw new Error(`pseudonym key version ${keyring.current} is not in the keyring`);
    }
  }

  get currentVersion(): number {
    return this.keyring.current;
  }

  /** The registry pseudonym of a canonical national id (see canonicalNationalId). */
  pseudonym(canonicalId: string, version = this.keyring.current): string {
    return `${version}-${this.mac(version, PERSON_LABEL + canonicalId)}`;
  }

  /** The stored form of a business identifier value, under the current key. */
  hashIdentifier(system: string | undefined, value: string, version = this.keyring.current): string {
    return `h${version}-${this.mac(version, IDENTIFIER_LABEL + (system ?? '') + '\u0000' + value)}`;
  }

  /** The stored forms under every configured key, newest first: what a conditional query must match. */
  hashIdentifierAllVersions(system: string | undefined, value: string): string[] {
    return [...this.keyring.keys.keys()]
      .sort((a, b) => b - a)
      .map((v) => this.hashIdentifier(system, value, v));
  }

  private mac(version: number, text: string): string {
    const key = this.keyring.keys.get(version);
    if (!key) {
      throw new Error(`pseudonym key version ${version} is not configured`);
    }
    return createHmac('sha256', key).update(text, 'utf8').digest('base64url');
  }
}

/** The key version a pseudonym was made with, or undefined when the text is not a pseudonym. */
export function pseudonymVersion(pseudonym: string): number | undefined {
  const match = /^(\d+)-[A-Za-z0-9_-]{43}$/.exec(pseudonym);
  return match ? Number(match[1]) : undefined;
}

/** True for a value the policy produced by hashing (so it is never hashed twice). */
export function isHashedIdentifierValue(value: string): boolean {
  return /^h\d+-[A-Za-z0-9_-]{43}$/.test(value);
}
