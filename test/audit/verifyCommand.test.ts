import { spawnSync } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { event, openTempLog, tempDataDir } from './fixtures';

const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');

function norpain(...args: string[]): { status: number | null; stdout: string } {
  const run = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_ENV: 'development' },
  });
  return { status: run.status, stdout: run.stdout + run.stderr };
}

describe('norpain audit verify', () => {
  it('prints OK with the count, then the broken position after a change, exiting non-zero', () => {
    const { log, dataDir, file } = openTempLog();
    for (let i = 1; i <= 4; i++) {
      log.append(event({ requestId: `req-${i}` }));
    }
    const head = log.verifyChain();
    log.close();
    if (!head.ok) throw new Error('the fresh log must verify');

    const ok = norpain('audit', 'verify', '--data-dir', dataDir);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('audit log OK: 4 entries');
    expect(ok.stdout).toContain(head.head);

    const db = new Database(file);
    db.exec('DROP TRIGGER audit_event_no_update');
    db.prepare("UPDATE audit_event SET event = replace(event, 'req-3', 'req-X') WHERE seq = 3").run();
    db.close();

    const broken = norpain('audit', 'verify', '--data-dir', dataDir);
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain('BROKEN at entry 3');
    expect(broken.stdout).toContain('2 entries before it verified');
  });

  it('reads DATA_DIR and says so when there is no audit log', () => {
    const empty = tempDataDir();
    const run = spawnSync(process.execPath, [BIN, 'audit', 'verify'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_ENV: 'development', DATA_DIR: empty },
    });
    expect(run.status).toBe(2);
    expect(run.stdout).toContain('audit log not found');
  });
});
