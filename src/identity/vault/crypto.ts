import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/**
 * The vault's cryptography. One configured VAULT_KEY yields two independent subkeys (HKDF-SHA-256):
 * one encrypts the national ids (AES-256-GCM, fresh 96-bit IV per record, the record's Patient id as
 * associated data so a record cannot be moved to another person), the other makes the lookup hashes of
 * the alias table. The lookup hashes do not depend on the pseudonym keys, so re-keying leaves them alone.
 */
export class VaultCrypto {
  private readonly encryptionKey: Buffer;
  private readonly lookupKey: Buffer;

  constructor(vaultKey: Buffer) {
    if (vaultKey.length !== 32) {
      throw new Error('the vault key must be 32 bytes');
    }
    this.encryptionKey = Buffer.from(
      hkdfSync('sha256', vaultKey, Buffer.alloc(0), 'norpain-vault-encryption', 32),
    );
    this.lookupKey = Buffer.from(hkdfSync('sha256', vaultKey, Buffer.alloc(0), 'norpain-vault-lookup', 32));
  }

  /** iv (12) ‖ tag (16) ‖ ciphertext. */
  seal(plaintext: string, associatedData: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encryptionKey, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]);
  }

  /** Throws when the key is wrong or the record was altered or moved. */
  open(sealed: Buffer, associatedData: string): string {
    const decipher = createDecipheriv('aes-256-gcm', this.encryptionKey, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
  }

  lookupHash(canonicalId: string): string {
    return createHmac('sha256', this.lookupKey).update(canonicalId, 'utf8').digest('base64url');
  }
}
