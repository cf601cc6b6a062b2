import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { AuditLog } from '../../src/audit/log';
import { event, openTempLog } from './fixtures';

/** Opens the audit file the way an intruder with file access would: a plain SQLite connection. */
function raw(file: string): Database.Database {
  return new Database(file);
}

function fill(log: AuditLog, n: number): void {
  for (let i = 1; i <= n; i++) {
    log.append(event({ requestId: `req-${i}`, resources: [`Condition/c${i}`] }));
  }
}

describe('audit log', () => {
  it('appends entries and reads them back as stored', () => {
    const { log } = openTempLog();
    const stored = log.append(event());
    expect(stored.id).toBeDefined();
    expect(log.read(stored.id!)).toEqual(stored);
    expect(log.search().matches).toEqual([stored]);
    log.close();
  });

  it('refuses a national id at the check, and a check records nothing', () => {
    const { log } = openTempLog();
    log.check(event({ requestId: 'req-checked' }));
    expect(log.search().matches).toEqual([]); // checking records nothing
    expect(() => log.check(event({ requestId: '10915596784' }))).toThrow();
    expect(log.verifyChain()).toMatchObject({ ok: true, count: 0 });
    log.close();
  });

  it('keeps the chain across reopening and across two connections appending in turn', () => {
    const { log, file } = openTempLog();
    fill(log, 3);
    const other = AuditLog.open(file);
    other.append(event({ requestId: 'from-other' }));
    log.append(event({ requestId: 'from-first' }));
    other.close();
    log.close();
    const reopened = AuditLog.open(file);
    reopened.append(event({ requestId: 'after-reopen' }));
    const result = reopened.verifyChain();
    expect(result).toEqual({ ok: true, count: 6, head: expect.stringMatching(/^[0-9a-f]{64}$/) });
    reopened.close();
  });

  it('verifies an empty log', () => {
    const { log } = openTempLog();
    expect(log.verifyChain()).toEqual({ ok: true, count: 0, head: '0'.repeat(64) });
    log.close();
  });

  it('refuses UPDATE and DELETE through SQL', () => {
    const { log, file } = openTempLog();
    fill(log, 2);
    const db = raw(file);
    expect(() => db.prepare("UPDATE audit_event SET outcome = '8' WHERE seq = 1").run()).toThrow(
      /append-only/,
    );
    expect(() => db.prepare('DELETE FROM audit_event WHERE seq = 2').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE audit_index SET value = 'x'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_index').run()).toThrow(/append-only/);
    db.close();
    expect(log.verifyChain()).toMatchObject({ ok: true, count: 2 });
    log.close();
  });

  describe('detects tampering done with the triggers dropped', () => {
    function tamper(sql: string, n = 5): ReturnType<AuditLog['verifyChain']> {
      const { log, file } = openTempLog();
      fill(log, n);
      expect(log.verifyChain()).toMatchObject({ ok: true, count: n });
      const db = raw(file);
      db.pragma('foreign_keys = OFF');
      db.exec('DROP TRIGGER audit_event_no_update; DROP TRIGGER audit_event_no_delete;');
      db.exec('DROP TRIGGER audit_index_no_update; DROP TRIGGER audit_index_no_delete;');
      db.exec(sql);
      db.close();
      const result = log.verifyChain();
      log.close();
      return result;
    }

    it('a changed event', () => {
      const result = tamper(
        "UPDATE audit_event SET event = replace(event, 'Condition/c3', 'Condition/other') WHERE seq = 3",
      );
      expect(result).toMatchObject({
        ok: false,
        position: 3,
        count: 2,
        reason: expect.stringMatching(/changed/),
      });
    });

    it('a changed event whose hash was recomputed without its successor', () => {
      // A forger who rehashes entry 3 still breaks the link to entry 4.
      const { log, file } = openTempLog();
      fill(log, 5);
      const db = raw(file);
      db.exec('DROP TRIGGER audit_event_no_update');
      const row = db
        .prepare<[], { prev_hash: string; event: string }>('SELECT * FROM audit_event WHERE seq = 3')
        .get()!;
      const forged = row.event.replace('Condition/c3', 'Condition/other');
      const hash = createHash('sha256').update(row.prev_hash).update(forged).digest('hex');
      db.prepare('UPDATE audit_event SET event = ?, hash = ? WHERE seq = 3').run(forged, hash);
      db.close();
      expect(log.verifyChain()).toMatchObject({
        ok: false,
        position: 4,
        reason: expect.stringMatching(/follow/),
      });
      log.close();
    });

    it('a changed search column', () => {
      const result = tamper("UPDATE audit_event SET outcome = '8' WHERE seq = 2");
      expect(result).toMatchObject({ ok: false, position: 2, reason: expect.stringMatching(/disagree/) });
    });

    it('a removed index row (the entry would vanish from a person’s access log)', () => {
      const result = tamper("DELETE FROM audit_index WHERE seq = 4 AND kind = 'patient'");
      expect(result).toMatchObject({ ok: false, position: 4, reason: expect.stringMatching(/disagree/) });
    });

    it('a deleted entry in the middle', () => {
      const result = tamper('DELETE FROM audit_index WHERE seq = 2; DELETE FROM audit_event WHERE seq = 2');
      expect(result).toMatchObject({
        ok: false,
        position: 2,
        count: 1,
        reason: expect.stringMatching(/missing/),
      });
    });

    it('a deleted last entry', () => {
      const result = tamper('DELETE FROM audit_index WHERE seq = 5; DELETE FROM audit_event WHERE seq = 5');
      expect(result).toMatchObject({
        ok: false,
        position: 5,
        count: 4,
        reason: expect.stringMatching(/missing/),
      });
    });

    it('an inserted entry', () => {
      const result = tamper(
        `INSERT INTO audit_event (id, recorded, action, outcome, event, prev_hash, hash)
         SELECT 'forged', recorded, action, outcome, event, hash, hash FROM audit_event WHERE seq = 5`,
      );
      expect(result).toMatchObject({ ok: false, position: 6, count: 5 });
    });

    it('an entry inserted in a gap left by a deletion', () => {
      const result = tamper(
        `DELETE FROM audit_index WHERE seq = 3; DELETE FROM audit_event WHERE seq = 3;
         INSERT INTO audit_event (seq, id, recorded, action, outcome, event, prev_hash, hash)
         SELECT 3, 'forged', recorded, action, outcome, event, prev_hash, hash FROM audit_event WHERE seq = 2`,
      );
      expect(result).toMatchObject({ ok: false, position: 3, count: 2 });
    });

    it('a swapped pair of entries', () => {
      const result = tamper(
        `UPDATE audit_event SET seq = 100 WHERE seq = 2; UPDATE audit_event SET seq = 2 WHERE seq = 3;
         UPDATE audit_event SET seq = 3 WHERE seq = 100`,
      );
      expect(result).toMatchObject({ ok: false, position: 2, count: 1 });
    });
  });
});
