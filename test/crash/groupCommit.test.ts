import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GroupCommit } from '../../src/store/groupCommit';

/**
 * Group commit (src/store/groupCommit.ts) under kill -9: a process commits rows from many concurrent
 * writers, reports each row only once `durable()` resolved for it (as the write journal acknowledges), and
 * is killed with SIGKILL while writers are still committing. Every reported row must be there after, in a
 * database that passes SQLite's integrity check.
 */
const CHILD = `
const Database = require('better-sqlite3');
const { GroupCommit } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'store', 'groupCommit.ts'))});
const db = new Database(process.argv[1]);
db.pragma('journal_mode = WAL');
db.exec('CREATE TABLE IF NOT EXISTS acked (n INTEGER PRIMARY KEY, body TEXT NOT NULL)');
const commits = GroupCommit.of(db);
const insert = db.prepare('INSERT INTO acked (n, body) VALUES (?, ?)');
let next = 0;
const writer = async () => {
  for (;;) {
    const n = next++;
    insert.run(n, 'x'.repeat(2000 + (n % 7) * 500));
    await commits.durable();
    process.stdout.write(n + '\\n');
    if (n === 400) process.kill(process.pid, 'SIGKILL');
  }
};
for (let i = 0; i < 16; i++) writer();
`;

function tempDb(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-group-commit-')), 'test.sqlite');
}

test('rows acknowledged after durable() are all present after kill -9', async () => {
  const file = tempDb();
  const child = spawn(process.execPath, ['-r', 'tsx/cjs', '-e', CHILD, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_, s) => resolve(s)),
  );
  expect(signal).toBe('SIGKILL');
  const acked = out
    .split('\n')
    .filter((line) => line !== '')
    .map(Number);
  expect(acked.length).toBeGreaterThan(100);

  const db = new Database(file);
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const present = new Set(
      db
        .prepare<[], { n: number }>('SELECT n FROM acked')
        .all()
        .map((row) => row.n),
    );
    expect(acked.filter((n) => !present.has(n))).toEqual([]);
  } finally {
    db.close();
  }
});

test('a database not in WAL mode is refused, and keeps its own sync at every commit', () => {
  const db = new Database(tempDb());
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = FULL');
    expect(() => GroupCommit.of(db)).toThrow('WAL');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
  } finally {
    db.close();
  }
});

test('durable() resolves before anything was committed, and with nothing new since the last sync', async () => {
  const db = new Database(tempDb());
  db.pragma('journal_mode = WAL');
  const commits = GroupCommit.of(db);
  try {
    await commits.durable();
    db.exec('CREATE TABLE t (x)');
    await Promise.all([commits.durable(), commits.durable(), commits.durable()]);
    await commits.durable();
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL: the syncs are durable()'s
  } finally {
    db.close();
    await commits.close();
  }
});
