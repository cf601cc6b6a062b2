import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, ServeProcess } from '../crash/harness';
import { createTestSchema, dropTestSchema, schemaUrl } from './state';

const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');
/** Where each replica's log is kept after the test (CI keeps test-output/): a 500 says only a request id. */
const LOGS = path.join(__dirname, '..', '..', 'test-output', 'replicas');

/** Replicas of `norpain serve` on one PostgreSQL state, as behind a load balancer. */
export interface Replicas {
  replicas: ServeProcess[];
  /** STATE and DATABASE_URL (with the schema), for a command run beside them. */
  stateEnv: Record<string, string>;
  /** `norpain audit verify` on the state they share passes: one chain, no fork, no gap. */
  expectAuditVerifies(): void;
  dispose(): Promise<void>;
}

/**
 * Starts `count` replicas on a fresh schema of STATE_DATABASE_URL, each with a DATA_DIR of its own and the
 * same development keys (as replicas in production get the same secrets). dispose kills them and drops
 * the schema.
 */
export async function startReplicas(
  databaseUrl: string,
  env: Record<string, string>,
  count = 2,
): Promise<Replicas> {
  const schema = await createTestSchema(databaseUrl);
  const stateEnv = { STATE: 'postgres', DATABASE_URL: schemaUrl(databaseUrl, schema) };
  const dirs = Array.from({ length: count }, (_, i) =>
    fs.mkdtempSync(path.join(os.tmpdir(), `norpain-replica-${i}-`)),
  );
  const replicas: ServeProcess[] = [];
  for (const dir of dirs) replicas.push(new ServeProcess(dir, await freePort(), { ...stateEnv, ...env }));
  const dispose = async (): Promise<void> => {
    await Promise.all(replicas.map((r) => r.kill()));
    fs.mkdirSync(LOGS, { recursive: true });
    replicas.forEach((r, i) => fs.writeFileSync(path.join(LOGS, `${schema}-${i}.log`), r.stderr));
    await dropTestSchema(databaseUrl, schema);
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The first start makes the development keys; the others get the same ones.
    await replicas[0].start();
    for (const dir of dirs.slice(1)) {
      fs.cpSync(path.join(dirs[0], 'keys'), path.join(dir, 'keys'), { recursive: true });
    }
    for (const replica of replicas.slice(1)) await replica.start();
  } catch (err) {
    await dispose();
    throw err;
  }
  const expectAuditVerifies = (): void => {
    const verify = spawnSync(process.execPath, [BIN, 'audit', 'verify'], {
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), DATA_DIR: dirs[0], ...stateEnv },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect({ code: verify.status, output: verify.stdout + verify.stderr }).toEqual({
      code: 0,
      output: expect.stringMatching(/^audit log OK: \d+ entries, head [0-9a-f]{64}\n$/),
    });
  };
  return { replicas, stateEnv, expectAuditVerifies, dispose };
}
