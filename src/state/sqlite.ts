import Database from 'better-sqlite3';
import type { SqlValue, StateDatabase, TransactionOptions } from './database';

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

  scrub(): void {
    // secure_delete zeroes the pages in the database file; the WAL still holds their old images.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  close(): void {
    if (this.db.open) {
      this.db.close();
    }
  }
}
