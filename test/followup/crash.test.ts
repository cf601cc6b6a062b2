import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { OutboxChannel } from '../../src/followup/outbox';
import { freePort, ServeProcess } from '../crash/harness';
import type { Bundle, EpisodeOfCare } from '@medplum/fhirtypes';
import { FNR_SYSTEM } from '../consent/fixtures';
import { call, DAY, ok, people, register, tasksOf } from './fixtures';

/**
 * Exactly one invitation per Task across crashes: `norpain dispatch` is killed with SIGKILL as soon as it has
 * delivered an invitation (the outbox file is in place), most often before the ledger records it as sent.
 * Run again, it delivers those recorded-but-unconfirmed attempts again with the same key (the same file),
 * so in the end every Task has exactly one message, none has a second distinct one, and none is lost.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');
const N = 18;
jest.setTimeout(300_000);

const store = (): Record<string, string> =>
  process.env.TEST_STORE === 'hapi' && process.env.HAPI_URL
    ? { STORE: 'hapi', HAPI_URL: process.env.HAPI_URL }
    : {};

/** Runs `norpain dispatch`, killing it with SIGKILL once `killAfter` more outbox files appeared. */
async function dispatchUntilKilled(
  dataDir: string,
  now: string,
  killAfter: number,
): Promise<'killed' | number> {
  const outbox = path.join(dataDir, 'outbox');
  fs.mkdirSync(outbox, { recursive: true });
  const files = () => fs.readdirSync(outbox).filter((f) => f.endsWith('.json')).length;
  const before = files();
  const child = spawn(process.execPath, [BIN, 'dispatch', '--now', now], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: os.tmpdir(),
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      ...store(),
    },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  let killed = false;
  const watcher = fs.watch(outbox, () => {
    if (!killed && files() - before >= killAfter) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  watcher.close();
  return killed ? 'killed' : (code ?? -1);
}

test('kill -9 between delivering and recording: no invitation twice, none lost', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-followup-crash-'));
  const serve = new ServeProcess(dataDir, await freePort(), { ...store(), RATE_LIMIT_PER_MINUTE: '0' });
  try {
    await serve.start();
    const clinic = await serve.token('clinic');
    const staff = await serve.token('registry-admin');
    const fnrs = people(4505, N);
    const taskIds: string[] = [];
    let start = 0;
    for (const fnr of fnrs) {
      const person = await register(serve.asTestServer, clinic, fnr);
      const [task] = await tasksOf(serve.asTestServer, staff, person.episodeId);
      taskIds.push(task.id as string);
      start = Math.max(start, Date.parse(task.executionPeriod?.start as string));
    }
    // The server keeps running, as it does beside cron's `norpain dispatch`.

    const now = new Date(start + DAY).toISOString();
    const ledger = path.join(dataDir, 'followup', 'dispatch.sqlite');
    let crashedBetween = 0;
    let finished: 'killed' | number = 'killed';
    for (let round = 0; round < 30 && finished === 'killed'; round++) {
      finished = await dispatchUntilKilled(dataDir, now, 3);
      const db = new Database(ledger, { readonly: true });
      const unconfirmed = db
        .prepare('SELECT idempotency_key AS key FROM attempt WHERE sent_at IS NULL')
        .all() as { key: string }[];
      db.close();
      // Delivered (the file is there) but not recorded as sent: the crash this test is about.
      crashedBetween += unconfirmed.filter((a) =>
        fs.existsSync(path.join(dataDir, 'outbox', OutboxChannel.fileName(a.key))),
      ).length;
    }
    expect(finished).toBe(0);
    expect(await dispatchUntilKilled(dataDir, now, Infinity)).toBe(0); // nothing left to do, nothing more sent // nothing left to do, nothing more sent

    const files = fs.readdirSync(path.join(dataDir, 'outbox')).sort();
    expect(files).toEqual(taskIds.map((id) => OutboxChannel.fileName(`${id}/1`)).sort());
    const db = new Database(ledger, { readonly: true });
    const attempts = db.prepare('SELECT idempotency_key AS key, sent_at AS sent FROM attempt').all() as {
      key: string;
      sent: string | null;
    }[];
    db.close();
    expect(attempts.map((a) => a.key).sort()).toEqual(taskIds.map((id) => `${id}/1`).sort());
    expect(attempts.every((a) => a.sent !== null)).toBe(true);
    for (const [i, id] of taskIds.entries()) {
      const message = JSON.parse(
        fs.readFileSync(path.join(dataDir, 'outbox', OutboxChannel.fileName(`${id}/1`)), 'utf8'),
      ) as { recipient: string };
      expect(message.recipient).toBe(fnrs[i]);
    }
    // The kills did land between delivering and recording (else this test would prove nothing).
    expect(crashedBetween).toBeGreaterThan(0);
  } finally {
    await serve.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('kill -9 while episodes are written: after restart every stored episode has its Task, none twice', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-followup-crash-'));
  const serve = new ServeProcess(dataDir, await freePort(), { ...store(), RATE_LIMIT_PER_MINUTE: '0' });
  try {
    await serve.start();
    const clinic = await serve.token('clinic');
    const fnrs = people(4506, 30);
    let answered = 0;
    const writes = fnrs.map((fnr) =>
      register(serve.asTestServer, clinic, fnr).then(
        () => answered++,
        () => undefined, // cut by the kill
      ),
    );
    while (answered < 8) await new Promise((r) => setTimeout(r, 20));
    await serve.kill(); // most writes are under way: some stored, some not, some between episode and Task
    await Promise.all(writes);
    await serve.start(); // recovery completes what the kill left
    const staff = await serve.token('registry-admin');
    let episodes = 0;
    for (const fnr of fnrs) {
      const found = ok(
        await call<Bundle<EpisodeOfCare>>(
          serve.asTestServer,
          staff,
          'GET',
          `EpisodeOfCare?patient.identifier=${encodeURIComponent(`${FNR_SYSTEM}|${fnr}`)}`,
        ),
        200,
      );
      for (const entry of found.entry ?? []) {
        episodes++;
        const tasks = await tasksOf(serve.asTestServer, staff, entry.resource?.id as string);
        expect(tasks.map((t) => t.code?.coding?.[0].code)).toEqual(['baseline']);
      }
    }
    expect(episodes).toBeGreaterThanOrEqual(8);
  } finally {
    await serve.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
