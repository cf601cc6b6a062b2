import path from 'node:path';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type pg from 'pg';
import { stateError } from '../unavailable';

/** What the worker needs: the connection settings, its end of the channel and the shared wake-up flag. */
export interface WorkerData {
  connection: pg.ClientConfig;
  port: MessagePort;
  signal: SharedArrayBuffer;
}

/** `connect`: the query may open a new connection when the last one was lost (never inside a transaction,
 * whose earlier statements died with the connection). */
export type WorkerRequest =
  { kind: 'query'; sql: string; params: unknown[]; connect: boolean } | { kind: 'end' };

export type WorkerReply =
  | { ok: true; rows: Record<string, unknown>[]; rowCount: number }
  | { ok: false; message: string; code?: string };

/** An error PostgreSQL answered with; `code` is its SQLSTATE. */
class PgError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'PgError';
  }
}

/** How long the calling thread waits for an answer: longer than PostgreSQL's own limits (pgConnection:
 * connect, lock and statement timeouts), so that it normally gets their error rather than a timeout. */
const ANSWER_TIMEOUT_MS = 30_000;

/**
 * One PostgreSQL connection with a synchronous interface (see src/state/database.ts for why). The
 * connection lives in a worker thread; a query is posted to it and the calling thread sleeps on a shared
 * flag (Atomics.wait) until the worker has posted the answer, which is then taken off the channel
 * synchronously (receiveMessageOnPort). The process does nothing else meanwhile, exactly as with a
 * synchronous SQLite call, so statements of one process never interleave.
 */
export class SyncPgClient {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag: Int32Array;
  private closed = false;

  constructor(connection: pg.ClientConfig) {
    const signal = new SharedArrayBuffer(4);
    this.flag = new Int32Array(signal);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const source = path.extname(__filename) === '.ts';
    this.worker = new Worker(path.join(__dirname, `worker${path.extname(__filename)}`), {
      workerData: {
        connection,
        port: port2,
        signal,
      } satisfies WorkerData,
      transferList: [port2],
      // Run from the TypeScript sources (tests, development), the worker needs tsx as the main thread has.
      execArgv: source ? ['--require', require.resolve('tsx/cjs')] : [],
    });
    // The worker only ever waits for this thread; it must not keep the process alive.
    this.worker.unref();
  }

  query(
    sql: string,
    params: readonly unknown[] = [],
    connect = false,
  ): { rows: Record<string, unknown>[]; rowCount: number } {
    let reply: WorkerReply;
    try {
      reply = this.call({ kind: 'query', sql, params: [...params], connect });
    } catch (err) {
      throw stateError(err);
    }
    if (!reply.ok) {
      throw stateError(new PgError(reply.message, reply.code));
    }
    return { rows: reply.rows.map(withBuffers), rowCount: reply.rowCount };
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    try {
      this.call({ kind: 'end' });
    } finally {
      void this.worker.terminate();
    }
  }

  private call(request: WorkerRequest): WorkerReply {
    if (this.closed && request.kind !== 'end') {
      throw new Error('the state database is closed');
    }
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage(request);
    // The first call also waits for the worker to start (tsx compiling it, in development).
    if (Atomics.wait(this.flag, 0, 0, ANSWER_TIMEOUT_MS) === 'timed-out') {
      // Its late answer would be taken for the next query's: this client is done.
      this.closed = true;
      void this.worker.terminate();
      throw new PgError('the state database did not answer in time', undefined);
    }
    const message = receiveMessageOnPort(this.port);
    if (message === undefined) {
      throw new Error('the state database worker woke without an answer');
    }
    return message.message as WorkerReply;
  }
}

/** bytea arrives as a Uint8Array after crossing threads; the concerns expect Buffers, as from SQLite. */
function withBuffers(row: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(row)) {
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
      row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
  }
  return row;
}
