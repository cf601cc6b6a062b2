import { createHmac, hkdfSync } from 'node:crypto';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { PseudonymKeyring } from '../identity/pseudonym';
import { openPrivateDatabase } from '../store/privateDatabase';

/**
 * Project pseudonyms (DESIGN §3.5, §5): in a study's view every resource id, the person's Patient id
 * among them, is a keyed pseudonym of the registry id under a key of that study alone, so the same person
 * has unrelated ids in two studies and nobody holding one study's data can link it to another's.
 *
 * The key is derived (HKDF-SHA-256) from the current registry pseudonym key and the study id. A project id
 * is the HMAC-SHA-256 of `Type/registry-id`, 128 bits written as 32 letters a–p: a valid FHIR id that can
 * never be mistaken for a registry id (a UUID) or hold a digit run that looks like a national id.
 *
 * An HMAC cannot be reversed, so every project id handed out is remembered with its registry id in the
 * façade's own database (`research.sqlite`, never the clinical store); searches, reads and paging by
 * project id look it up there. An id never handed out in this study (another study's, a registry id, a
 * guess) is unknown and resolves to nothing.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS project_id (
  study TEXT NOT NULL,
  type TEXT NOT NULL,
  project_id TEXT NOT NULL,
  registry_id TEXT NOT NULL,
  PRIMARY KEY (study, type, project_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS project_id_registry ON project_id (registry_id);
`;

export class ProjectPseudonyms {
  private readonly insert: Database.Statement<[string, string, string, string]>;
  private readonly lookup: Database.Statement<[string, string, string], { registry_id: string }>;

  private constructor(
    private readonly db: Database.Database,
    private readonly keyring: PseudonymKeyring,
  ) {
    this.insert = db.prepare(
      'INSERT OR IGNORE INTO project_id (study, type, project_id, registry_id) VALUES (?, ?, ?, ?)',
    );
    this.lookup = db.prepare(
      'SELECT registry_id FROM project_id WHERE study = ? AND type = ? AND project_id = ?',
    );
  }

  static open(dataDir: string, keyring: PseudonymKeyring): ProjectPseudonyms {
    return new ProjectPseudonyms(openPrivateDatabase(path.join(dataDir, 'research.sqlite'), SCHEMA), keyring);
  }

  /** The pseudonyms of one study. */
  forStudy(studyId: string): StudyPseudonyms {
    const ikm = this.keyring.keys.get(this.keyring.current) as Buffer;
    const key = Buffer.from(
      hkdfSync('sha256', ikm, 'norpain-project-pseudonym', `study\u0000${studyId}`, 32),
    );
    return new StudyPseudonyms(studyId, key, this);
  }

  /** @internal Remembers handed-out ids in one transaction. */
  remember(study: string, rows: Iterable<[type: string, projectId: string, registryId: string]>): void {
    this.db.transaction(() => {
      for (const [type, projectId, registryId] of rows) this.insert.run(study, type, projectId, registryId);
    })();
  }

  /** @internal */
  registryId(study: string, type: string, projectId: string): string | undefined {
    return this.lookup.get(study, type, projectId)?.registry_id;
  }

  close(): void {
    this.db.close();
  }
}

/** One study's pseudonyms. Ids made since the last `commit` are written to the mapping table by it. */
export class StudyPseudonyms {
  private readonly made = new Map<string, [string, string, string]>();

  constructor(
    private readonly study: string,
    private readonly key: Buffer,
    private readonly table: ProjectPseudonyms,
  ) {}

  /** The project id of a registry resource id. */
  id(type: string, registryId: string): string {
    const hex = createHmac('sha256', this.key)
      .update(`${type}/${registryId}`, 'utf8')
      .digest('hex')
      .slice(0, 32);
    // Hex digits as the letters a–p: no digit runs, nothing like a UUID.
    const projectId = hex.replace(/[0-9a-f]/g, (d) => String.fromCharCode(97 + parseInt(d, 16)));
    this.made.set(`${type}/${projectId}`, [type, projectId, registryId]);
    return projectId;
  }

  /** The registry id behind a project id handed out in this study, else undefined. */
  registryId(type: string, projectId: string): string | undefined {
    return this.made.get(`${type}/${projectId}`)?.[2] ?? this.table.registryId(this.study, type, projectId);
  }

  /** Writes the ids made since the last commit; call before the researcher is shown them. */
  commit(): void {
    if (this.made.size === 0) return;
    this.table.remember(this.study, this.made.values());
    this.made.clear();
  }
}
