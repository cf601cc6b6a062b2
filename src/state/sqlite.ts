import Database from 'better-sqlite3';
import { fileHolds } from '../store/fileHolds';
import type { SqlValue, StateDatabase, TransactionOptions } from './database';
import { StateUnavailableError } from './unavailable';

/** A StateDatabase on one better-sqlite3 connection (one file per concern, as before STATE existed). */
export class SqliteStateDatabase implements StateDatabase {
  readonly dialect = 'sqlite';
  private readonly statements = new Map<string, Database.Statement<SqlValue[]>>();

  constructor(readonly db: Database.Database) {}

  private statement(sql: string): Database.Statement<SqlValue[]> {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare<SqlValue[]>(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  get<T>(sql: string, params: readonly SqlValue[] = []): T | undefined {
    return this.statement(sql).get(...params) as T | undefined;
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): T[] {
    return this.statement(sql).all(...params) as T[];
  }

  run(sql: string, params: readonly SqlValue[] = []): { changes: number } {
    return { changes: this.statement(sql).run(...params).changes };
  }

  transaction<T>(fn: () => T, options: TransactionOptions = {}): T {
    const tx = this.db.transaction(fn);
    // IMMEDIATE takes the database's write lock before the first read: the one lock every writer of the
    // file takes, so it serialises whatever was named.
    return options.serialise !== undefined ? tx.immediate() : tx();
  }

  scrub(texts: readonly string[]): void {
    // secure_delete (openPrivateDatabase) zeroes a deleted cell in its page, but the WAL keeps the frames
    // written before the delete until a checkpoint, and a page's unallocated space may keep former copies
    // of cells SQLite moved (src/store/embedded/README.md): the WAL goes, then the files are looked at, and
    // VACUUM, which rewrites every page from the live rows, runs only when a copy is found.
    this.checkpoint();
    const files = [this.db.name, `${this.db.name}-wal`];
    if (fileHolds(files, texts)) {
      this.db.exec('VACUUM');
      this.checkpoint();
    }
  }

  /** Copies the WAL into the file and truncates it; another process reading the file can hold it back. */
  private checkpoint(): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      const [result] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      if (result.busy === 0) {
        return;
      }
    }
    throw new StateUnavailableError(`another process holds ${this.db.name}; its write-ahead log stays`);
  }

  close(): void {
    if (this.db.open) {
      this.db.close();
    }
  }
}
