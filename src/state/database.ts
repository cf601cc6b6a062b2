/**
 * The façade's own state (DESIGN §7): the identity vault, the reservation register and the audit log keep
 * their rows through this one contract, so each concern is written once and runs on either backend:
 * SQLite files under DATA_DIR (the default, `STATE=sqlite`) or one PostgreSQL database shared by every
 * replica (`STATE=postgres`, src/state/postgres).
 *
 * The contract is synchronous on purpose. The write path decides a person's identity inside a synchronous
 * plan (IdentityVault.rehearse runs the policy engine, whose callbacks look persons up), and a
 * synchronous call can never interleave with another request of the same process: what better-sqlite3
 * gave the concerns within one process, the PostgreSQL implementation keeps, and PostgreSQL's own
 * transactions and locks extend it across processes.
 *
 * SQL given to it is the dialect both understand: `?` placeholders, `INSERT … ON CONFLICT`, `RETURNING`,
 * `CAST(… AS INTEGER)`, text instants; tables are made by each backend's own schema (SQLite: the concern's
 * `CREATE … IF NOT EXISTS`; PostgreSQL: versioned migrations, src/state/postgres/migrations.ts).
 */
export type SqlValue = string | number | Buffer | null;

export type StateDialect = 'sqlite' | 'postgres';

export interface TransactionOptions {
  /**
   * A name whose lock the transaction takes before anything else, so that transactions naming it run one
   * after the other in every process sharing the database (the audit chain's append).
   */
  serialise?: string;
  /** Every read in the transaction sees one snapshot of the database (a consistent read of many rows). */
  snapshot?: boolean;
}

export interface StateDatabase {
  readonly dialect: StateDialect;
  get<T>(sql: string, params?: readonly SqlValue[]): T | undefined;
  all<T>(sql: string, params?: readonly SqlValue[]): T[];
  run(sql: string, params?: readonly SqlValue[]): { changes: number };
  /** Runs fn in a transaction: committed when it returns, rolled back when it throws. Nested calls are
   * savepoints of the outer transaction. */
  transaction<T>(fn: () => T, options?: TransactionOptions): T;
  /**
   * After a person's rows were deleted from `tables` (an erasure, DESIGN §3.2): removes the copies of
   * their bytes the database keeps outside its live rows, so that none of `texts` (the person's Patient
   * id, pseudonym, national ids) is left in its files. Outside a transaction. SQLite works on the
   * concern's whole file; PostgreSQL rewrites the tables (their indexes and TOAST with them).
   */
  scrub(texts: readonly string[], tables: readonly string[]): void;
  close(): void;
}
