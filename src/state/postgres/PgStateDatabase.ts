import type pg from 'pg';
import type { SqlValue, StateDatabase, TransactionOptions } from '../database';
import { advisoryKey } from './lockKey';
import { SyncPgClient } from './syncClient';

/**
 * The state on PostgreSQL, shared by every replica: a StateDatabase on one synchronous connection per
 * process (syncClient.ts). Tables come from the migrations (migrations.ts), run before this is opened.
 */
export class PgStateDatabase implements StateDatabase {
  readonly dialect = 'postgres';
  private readonly client: SyncPgClient;
  private readonly translated = new Map<string, string>();
  private depth = 0;

  constructor(connection: pg.ClientConfig) {
    this.client = new SyncPgClient(connection);
  }

  get<T>(sql: string, params: readonly SqlValue[] = []): T | undefined {
    return this.query(sql, params).rows[0] as T | undefined;
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): T[] {
    return this.query(sql, params).rows as T[];
  }

  run(sql: string, params: readonly SqlValue[] = []): { changes: number } {
    return { changes: this.query(sql, params).rowCount };
  }

  transaction<T>(fn: () => T, options: TransactionOptions = {}): T {
    const outer = this.depth === 0;
    const savepoint = `s${this.depth}`;
    if (outer) {
      // READ COMMITTED unless a snapshot is asked for: a serialised transaction must see what the one
      // before it committed while it waited for the lock.
      this.client.query(options.snapshot ? 'BEGIN ISOLATION LEVEL REPEATABLE READ' : 'BEGIN', [], true);
    } else {
      this.client.query(`SAVEPOINT ${savepoint}`);
    }
    this.depth++;
    try {
      if (options.serialise !== undefined) {
        this.client.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryKey(options.serialise)]);
      }
      const result = fn();
      this.client.query(outer ? 'COMMIT' : `RELEASE SAVEPOINT ${savepoint}`);
      return result;
    } catch (err) {
      try {
        this.client.query(outer ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${savepoint}`);
      } catch {
        // The connection is gone, and its transaction with it; what the caller must see is why.
      }
      throw err;
    } finally {
      this.depth--;
    }
  }

  scrub(_texts: readonly string[], tables: readonly string[]): void {
    // A deleted row stays in its table's and its indexes' pages until the space is reused; a plain VACUUM
    // marks it free without overwriting it (docs/hapi.md measured the same of HAPI's tables). VACUUM FULL
    // writes each table anew from its live rows, rebuilds its indexes and TOAST, and deletes the old files.
    // A row another session's snapshot may still see is copied too: transactions on the state are short.
    // The write-ahead log keeps the bytes until its segments are recycled (docs/hapi.md, "What remains").
    if (tables.length > 0) {
      this.query(`VACUUM (FULL) ${tables.map((t) => `"${t}"`).join(', ')}`, []);
    }
  }

  close(): void {
    this.client.close();
  }

  private query(
    sql: string,
    params: readonly SqlValue[],
  ): { rows: Record<string, unknown>[]; rowCount: number } {
    return this.client.query(this.dialectOf(sql), params, this.depth === 0);
  }

  /** `?` placeholders become `$1…$n` (the concerns' SQL has no question mark in a literal). */
  private dialectOf(sql: string): string {
    let text = this.translated.get(sql);
    if (text === undefined) {
      let n = 0;
      text = sql.replace(/\?/g, () => `$${++n}`);
      this.translated.set(sql, text);
    }
    return text;
  }
}
