import { type MessagePort, workerData } from 'node:worker_threads';
import pg from 'pg';
import type { WorkerData, WorkerReply, WorkerRequest } from './syncClient';

/**
 * The thread that owns the PostgreSQL connection of a SyncPgClient: it runs each query it is sent and
 * wakes the waiting main thread (see syncClient.ts).
 */
const { connection, port, signal } = workerData as WorkerData;
const flag = new Int32Array(signal);

// Counts and positions are bigint in PostgreSQL; the state's numbers are far below 2^53.
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format),
};

let client: pg.Client | undefined;
let started = false;

async function connected(connect: boolean): Promise<pg.Client> {
  if (!client && started && !connect) {
    throw new Error('the connection to the state database was lost in the middle of a transaction');
  }
  if (!client) {
    started = true;
    const fresh = new pg.Client({ ...connection, types });
    // A dropped connection fails the query in flight; the next query connects anew.
    fresh.on('error', () => {
      if (client === fresh) client = undefined;
    });
    client = fresh;
    try {
      await fresh.connect();
    } catch (err) {
      client = undefined;
      throw err;
    }
  }
  return client;
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  try {
    if (request.kind === 'end') {
      await client?.end();
      client = undefined;
      return { ok: true, rows: [], rowCount: 0 };
    }
    const result = await (await connected(request.connect)).query(request.sql, request.params);
    return { ok: true, rows: result.rows as Record<string, unknown>[], rowCount: result.rowCount ?? 0 };
  } catch (err) {
    const e = err as { message?: string; code?: string };
    return { ok: false, message: e.message ?? String(err), code: e.code };
  }
}

(port as MessagePort).on('message', (request: WorkerRequest) => {
  void handle(request).then((reply) => {
    port.postMessage(reply);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
});
