import { createCipheriv, createDecipheriv, hkdfSync, type Cipher, type Decipher } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadKey, type Env } from '../config/secrets';
import { hasServerIdForm } from '../identity/serverId';

/**
 * Project pseudonyms (DESIGN §3.5, §5): in a study's view every resource id, the person's Patient id
 * among them, is a keyed pseudonym of the registry id under a key of that study alone, so the same person
 * has unrelated ids in two studies and nobody holding one study's data can link it to another's.
 *
 * A project id is the registry id encrypted, so the server turns it back without remembering anything:
 * no table of handed-out ids exists that an erasure would have to reach, and every replica resolves the
 * ids any other handed out. Every id of person data is a UUID the server assigned (the ingest refuses
 * chosen ids of person data, the identity vault gives Patient ids, HAPI assigns UUIDs), that is one AES
 * block: its project id is AES-256 of those 16 bytes, a keyed pseudorandom permutation, written as 32
 * letters a–p (the hex digits shifted). That is a valid FHIR id that can never be mistaken for a registry
 * id (a UUID) or hold a digit run that looks like a national id. The AES key is HKDF-SHA-256 of the
 * research key with the study and the resource type, so ids of two studies (or two types) are unrelated.
 *
 * Any 32 letters a–p decrypt to some UUID: an id of another study or a guess yields one that (but for
 * a 2^-122 chance) no resource has, and the view checks that what it names is in the view anyway.
 *
 * The research key is its own (RESEARCH_KEY, see loadResearchKey), not the registry pseudonym key: a
 * pseudonym key rotation (`norpain rekey`) must not change every researcher's ids in the middle of a
 * study, and the pseudonym keys' old versions are retired after a rotation, which would lose the ids.
 */
export class ProjectPseudonyms {
  constructor(private readonly researchKey: Buffer) {}

  /** The pseudonyms of one study. */
  forStudy(studyId: string): StudyPseudonyms {
    return new StudyPseudonyms((type) =>
      Buffer.from(
        hkdfSync('sha256', this.researchKey, '', `norpain-project-id\u0000${studyId}\u0000${type}`, 32),
      ),
    );
  }
}

const PROJECT_ID = /^[a-p]{32}$/;
/** A byte as two letters a–p (its hex digits shifted). */
const LETTER_PAIRS = Array.from({ length: 256 }, (_, byte) =>
  String.fromCharCode(97 + (byte >> 4), 97 + (byte & 15)),
);

/** One study's pseudonyms. */
export class StudyPseudonyms {
  // ECB without padding keeps no state between blocks: one cipher per type serves every id.
  private readonly ciphers = new Map<string, { encrypt: Cipher; decrypt: Decipher }>();

  constructor(private readonly keyOf: (type: string) => Buffer) {}

  /** The project id of a registry resource id (always a server-form UUID, see above). */
  id(type: string, registryId: string): string {
    if (!hasServerIdForm(registryId)) {
      // Cannot happen for stored person data (see above); a store that holds one is not the registry's.
      throw new Error(`${type} has an id that is not of the server's form; it has no project id`);
    }
    // A whole-view export makes one or two per resource: written without regular expressions or hex
    // text in between, as this takes a quarter of the time the straightforward form did.
    const hex =
      registryId.slice(0, 8) +
      registryId.slice(9, 13) +
      registryId.slice(14, 18) +
      registryId.slice(19, 23) +
      registryId.slice(24);
    const block = this.cipher(type).encrypt.update(Buffer.from(hex, 'hex'));
    let id = '';
    for (const byte of block) id += LETTER_PAIRS[byte];
    return id;
  }

  /** The registry id behind a project id of this study; undefined when the text is not one. Whether a
   * resource has that id (and is in the view) is for the caller to find out. */
  registryId(type: string, projectId: string): string | undefined {
    if (!PROJECT_ID.test(projectId)) return undefined;
    const hex = projectId.replace(/[a-p]/g, (c) => (c.charCodeAt(0) - 97).toString(16));
    const plain = this.cipher(type).decrypt.update(Buffer.from(hex, 'hex')).toString('hex');
    return `${plain.slice(0, 8)}-${plain.slice(8, 12)}-${plain.slice(12, 16)}-${plain.slice(16, 20)}-${plain.slice(20)}`;
  }

  private cipher(type: string): { encrypt: Cipher; decrypt: Decipher } {
    let pair = this.ciphers.get(type);
    if (pair === undefined) {
      const key = this.keyOf(type);
      pair = {
        encrypt: createCipheriv('aes-256-ecb', key, null).setAutoPadding(false),
        decrypt: createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false),
      };
      this.ciphers.set(type, pair);
    }
    return pair;
  }
}

/**
 * The research key: `RESEARCH_KEY` or `RESEARCH_KEY_FILE` (32 random bytes, base64 or 64 hex digits),
 * required in production, created under DATA_DIR/keys in development. Every replica needs the same one.
 * Changing it changes every study's project ids: it is never rotated during a study.
 */
export function loadResearchKey(options: {
  env: Env;
  production: boolean;
  dataDir: string;
  onCreated?: (message: string, file: string) => void;
}): Buffer {
  return loadKey('RESEARCH_KEY', 'research-key', options);
}

/**
 * Removes the table of handed-out project ids that earlier versions kept (DATA_DIR/research.sqlite, with
 * its journal files): it held registry ids of persons an erasure did not reach. Runs at every start;
 * returns whether there was one.
 */
export function removeRetiredIdTable(dataDir: string): boolean {
  const file = path.join(dataDir, 'research.sqlite');
  const existed = fs.existsSync(file);
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${file}${suffix}`, { force: true });
  return existed;
}
