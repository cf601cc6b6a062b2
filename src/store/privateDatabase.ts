import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/**
 * Opens (creating if need be) one of the façade's own small SQLite databases that hold what must survive
 * once answered and must not linger once deleted (the identity vault, the reservation register): a private
 * file (0600 in a 0700 folder), WAL with every commit synced to disk (`synchronous = FULL`: in WAL mode
 * NORMAL does not sync at commit, so a power loss could undo what a client was already told), deleted rows
 * overwritten (`secure_delete`), foreign keys on, and the schema applied.
 */
export function openPrivateDatabase(file: string, schema: string): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  try {
    fs.chmodSync(file, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    db.pragma('foreign_keys = ON');
    db.exec(schema);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
