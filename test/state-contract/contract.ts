import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { AuditLog, auditLogPath } from '../../src/audit/log';
import { ReservationRegister } from '../../src/consent/register';
import { ConfigError } from '../../src/config/ConfigError';
import { StateJobStore, type NewJob } from '../../src/export/jobs';
import { StateDispatchLedger, type AttemptRecord } from '../../src/followup/ledger';
import { Pseudonymiser } from '../../src/identity/pseudonym';
import { seededRandom } from '../../src/identity/synthetic';
import type { NationalId } from '../../src/identity/nationalId';
import { MemoryVaultAuditSink } from '../../src/identity/vault/audit';
import { IdentityVault, SeveralPersonsError } from '../../src/identity/vault/IdentityVault';
import type { StateServices } from '../../src/state';
import { PatientFacts } from '../../src/store/patientFacts';
import { event } from '../audit/fixtures';
import { syntheticId } from '../helpers/nationalIds';
import type { TestState } from '../helpers/state';

const run = promisify(execFile);
const random = seededRandom(17);
const fnr = (): NationalId => syntheticId('fnr', random);
const dnr = (): NationalId => syntheticId('dnr', random);
const ctx = { actor: 'state-contract' };

/**
 * The contract of the façade's state (src/state), run against each backend: the identity vault, the
 * reservation register, the audit log, the DPoP replay cache and the person locks behave the same on
 * SQLite and on PostgreSQL, including with several writers where the backend allows them.
 */
export function describeStateContract(name: string, open: () => Promise<TestState>): void {
  describe(`state contract: ${name}`, () => {
    let state: TestState;
    const vaultKey = randomBytes(32);
    const registerKey = randomBytes(32);
    const pseudonymiser = new Pseudonymiser({ current: 1, keys: new Map([[1, randomBytes(32)]]) });
    const openVault = (key = vaultKey): IdentityVault =>
      IdentityVault.open({
        file: IdentityVault.defaultFile(state.dataDir),
        state: state.config,
        vaultKey: key,
        pseudonymiser,
        audit: new MemoryVaultAuditSink(),
      });
    const openRegister = (key = registerKey): ReservationRegister =>
      ReservationRegister.open({
        file: ReservationRegister.defaultFile(state.dataDir),
        state: state.config,
        key,
      });
    const openLog = (): AuditLog => AuditLog.open(auditLogPath(state.dataDir), state.config);

    beforeAll(async () => {
      state = await open();
    });
    afterAll(async () => {
      await state.dispose();
    });

    describe('identity vault', () => {
      test('links, finds, erases; a second connection sees what the first committed', () => {
        const vault = openVault();
        const other = openVault();
        try {
          const [a, b] = [fnr(), dnr()];
          const { person, created } = vault.link([a]);
          expect(created).toBe(true);
          expect(other.find(a)).toEqual(person);
          expect(other.link([a, b])).toEqual({ person, created: false, merged: [] });
          expect(vault.find(b)).toEqual(person);
          expect(
            vault
              .forAccessRequest(b, ctx)
              ?.ids.map((id) => id.value)
              .sort(),
          ).toEqual([a.value, b.value].sort());
          expect(
            other
              .erase(person.patientId, ctx)
              ?.map((id) => id.value)
              .sort(),
          ).toEqual([a.value, b.value].sort());
          expect(vault.find(a)).toBeUndefined();
          expect(vault.findByPatientId(person.patientId)).toBeUndefined();
        } finally {
          vault.close();
          other.close();
        }
      });

      test('a rehearsal sees its own links and leaves nothing; commit makes them', () => {
        const vault = openVault();
        try {
          const id = fnr();
          const before = vault.count();
          const { result, links } = vault.rehearse(() => {
            const linked = vault.link([id]);
            return { linked, seen: vault.find(id) };
          });
          expect(result.seen).toEqual(result.linked.person);
          expect(vault.find(id)).toBeUndefined();
          expect(vault.count()).toBe(before);
          const [committed] = vault.commit(links);
          expect(committed.person).toEqual(result.linked.person);
          expect(vault.find(id)).toEqual(result.linked.person);
        } finally {
          vault.close();
        }
      });

      test('ids of two persons are refused and change nothing; a wrong key is refused at open', () => {
        const vault = openVault();
        try {
          const [a, b] = [fnr(), fnr()];
          const first = vault.link([a]).person;
          const second = vault.link([b]).person;
          expect(() => vault.link([a, b])).toThrow(SeveralPersonsError);
          expect(vault.find(a)).toEqual(first);
          expect(vault.find(b)).toEqual(second);
        } finally {
          vault.close();
        }
        expect(() => openVault(randomBytes(32))).toThrow(ConfigError);
      });

      test('rekey holds the lock it is given for each person', async () => {
        const vault = openVault();
        try {
          vault.link([fnr()]);
          const held: string[] = [];
          const next = new Pseudonymiser({
            current: 2,
            keys: new Map([
              [1, randomBytes(32)],
              [2, randomBytes(32)],
            ]),
          });
          const rekeying = IdentityVault.open({
            file: IdentityVault.defaultFile(state.dataDir),
            state: state.config,
            vaultKey,
            pseudonymiser: next,
            audit: new MemoryVaultAuditSink(),
          });
          try {
            const total = await rekeying.rekey(
              async (change) => {
                expect(held).toEqual([`held ${change.patientId}`]);
              },
              ctx,
              async (patientId) => {
                held.push(`held ${patientId}`);
                return () => void held.pop();
              },
            );
            expect(total).toBe(vault.count());
            expect(held).toEqual([]);
            expect(await rekeying.rekey(async () => undefined, ctx)).toBe(0);
          } finally {
            rekeying.close();
          }
        } finally {
          vault.close();
        }
      });
    });

    describe('reservation register', () => {
      test('reserves, finds by hash, withdraws, remembers erased references', () => {
        const register = openRegister();
        const other = openRegister();
        try {
          const hash = register.hashNationalId(fnr());
          const { record, created } = register.reserve({
            hashes: [hash],
            scope: 'patient-privacy',
            channel: 'portal',
            reservedAt: '2026-12-01T10:00:00.000Z',
            erasing: { patientId: 'p-contract', pseudonym: '1-contract' },
          });
          expect(created).toBe(true);
          expect(other.activeFor([hash])).toEqual(record);
          expect(
            other.reserve({
              hashes: [hash],
              scope: 'patient-privacy',
              channel: 'letter',
              reservedAt: '2026-12-02',
            }),
          ).toMatchObject({ created: false, record: { id: record.id } });
          expect(other.pendingErasures()).toContainEqual({
            reservationId: record.id,
            patientId: 'p-contract',
            pseudonym: '1-contract',
          });
          register.erasureComplete('p-contract');
          expect(other.pendingErasures().some((p) => p.patientId === 'p-contract')).toBe(false);
          expect(other.wasErased('patient', 'p-contract')).toBe(true);
          expect(other.wasErased('patient', 'p-other')).toBe(false);
          expect(other.withdraw([hash], 'portal')).toMatchObject({ id: record.id, status: 'inactive' });
          expect(register.activeFor([hash])).toBeUndefined();
          expect(register.lookup(hash)).toHaveLength(1);
          expect(register.withdraw([hash], 'portal')).toBeUndefined();
        } finally {
          register.close();
          other.close();
        }
        expect(() => openRegister(randomBytes(32))).toThrow(ConfigError);
      });
    });

    describe('audit log', () => {
      test('appends, reads, searches and verifies; two connections append to one chain', () => {
        const log = openLog();
        const other = openLog();
        try {
          const first = log.append(event({ requestId: 'contract-1' }));
          const second = other.append(
            event({ requestId: 'contract-2', interaction: 'update', outcome: '8' }),
          );
          log.append(event({ requestId: 'contract-3' }));
          expect(other.read(first.id!)).toEqual(first);
          expect(log.search({ requestId: 'contract-2' }).matches).toEqual([second]);
          expect(log.search({ outcome: ['8'], count: 0 }).total).toBeGreaterThanOrEqual(1);
          expect(log.search({ outcome: [] }).matches).toEqual([]);
          expect(log.hasEntry('contract-3', first.recorded!, '0')).toBe(true);
          expect(other.verifyChain()).toMatchObject({ ok: true });
        } finally {
          log.close();
          other.close();
        }
      });

      test('refuses an entry with a national id and writes nothing', () => {
        const log = openLog();
        try {
          const before = log.search({ count: 0 }).total;
          const id = fnr().value;
          expect(() => log.append(event({ requestId: `req-${id}` }))).toThrow();
          expect(log.search({ count: 0 }).total).toBe(before);
        } finally {
          log.close();
        }
      });

      test('several processes appending at once leave one chain, without forks or gaps', async () => {
        const log = openLog();
        try {
          const before = log.verifyChain();
          expect(before.ok).toBe(true);
          const perProcess = 25;
          const script = path.join(__dirname, 'appender.ts');
          await Promise.all(
            ['a', 'b', 'c'].map((writer) =>
              run(
                process.execPath,
                [
                  '--require',
                  require.resolve('tsx/cjs'),
                  script,
                  JSON.stringify(state.config),
                  state.dataDir,
                  writer,
                  String(perProcess),
                ],
                { timeout: 120_000 },
              ),
            ),
          );
          expect(log.verifyChain()).toEqual({
            ok: true,
            count: before.count + 3 * perProcess,
            head: expect.stringMatching(/^[0-9a-f]{64}$/),
          });
        } finally {
          log.close();
        }
      });
    });

    describe('DPoP replay cache', () => {
      test('a proof is accepted once, on any replica, until it expires', async () => {
        const replica = await state.replica();
        const key = `jkt ${randomBytes(8).toString('hex')}`;
        const future = Date.now() + 60_000;
        expect(await state.services.replayCache.remember(key, future)).toBe(true);
        expect(await replica.replayCache.remember(key, future)).toBe(false);
        expect(await state.services.replayCache.remember(key, future)).toBe(false);
        const expired = `jkt ${randomBytes(8).toString('hex')}`;
        expect(await replica.replayCache.remember(expired, Date.now() - 1)).toBe(true);
        expect(await state.services.replayCache.remember(expired, future)).toBe(true);
      });
    });

    describe('follow-up dispatch ledger', () => {
      const attempt = (taskId: string, n: number, patientId: string): AttemptRecord => ({
        idempotencyKey: `${taskId}/${n}`,
        taskId,
        attempt: n,
        kind: n === 1 ? 'invitation' : 'reminder',
        questionnaire: 'https://norpain.no/fhir/Questionnaire/norpain-baseline|1',
        expires: '2027-01-01T00:00:00.000Z',
        patientId,
        recordedAt: new Date().toISOString(),
      });

      test('records once, confirms, forgets a person; a second connection sees each step', () => {
        const ledger = StateDispatchLedger.open(state.config, state.dataDir);
        const other = StateDispatchLedger.open(state.config, state.dataDir);
        try {
          const [task, patient] = [randomBytes(6).toString('hex'), randomBytes(6).toString('hex')];
          ledger.opened(task, patient);
          ledger.record(attempt(task, 1, patient));
          // A second record of the same key (another replica's) changes nothing.
          other.record({ ...attempt(task, 1, patient), recordedAt: '2000-01-01T00:00:00.000Z' });
          expect(other.unconfirmed().filter((a) => a.taskId === task)).toEqual(
            [attempt(task, 1, patient)].map((a) => ({ ...a, recordedAt: expect.any(String) })),
          );
          expect(other.attempt(`${task}/1`)?.recordedAt).not.toBe('2000-01-01T00:00:00.000Z');
          other.markSent(`${task}/1`, new Date('2026-12-07T10:00:00Z'));
          expect(ledger.attempt(`${task}/1`)?.sentAt).toBe('2026-12-07T10:00:00.000Z');
          expect(ledger.unconfirmed().some((a) => a.taskId === task)).toBe(false);
          ledger.record(attempt(task, 2, patient));
          expect(other.attemptsOf(task).map((a) => a.attempt)).toEqual([1, 2]);
          expect(other.sentAttempts().filter((a) => a.taskId === task)).toHaveLength(1);
          expect(other.forgetPerson(patient)).toBe(1);
          expect(ledger.attemptsOf(task)).toEqual([]);
          expect(ledger.attempt(`${task}/1`)).toBeUndefined();
          expect(ledger.forgetPerson(patient)).toBe(0);
        } finally {
          ledger.close();
          other.close();
        }
      });
    });

    describe('bulk export jobs', () => {
      const job = (id: string): NewJob => ({
        id,
        owner: 'client-a',
        request: 'https://example.org/fhir/$export',
        requestId: randomBytes(4).toString('hex'),
        level: 'system',
        types: ['Patient', 'Condition'],
        transactionTime: new Date().toISOString(),
        createdAt: new Date().toISOString(),
      });

      test('a job started on one replica is read, finished and cancelled on another', async () => {
        const replica = await state.replica();
        const a = StateJobStore.open(state.config, state.dataDir, state.services.instance);
        const b = StateJobStore.open(state.config, state.dataDir, replica.instance);
        try {
          const [done, cancelled] = [randomUUID(), randomUUID()];
          a.create(job(done));
          a.create(job(cancelled));
          expect(a.progress(done, 10, 1)).toBe(true);
          expect(b.get(done)).toMatchObject({ status: 'in-progress', written: 10, typesDone: 1 });
          expect(
            a.finish(
              done,
              { status: 'completed', output: [{ type: 'Patient', name: 'Patient-1.ndjson', count: 10 }] },
              '2000-01-01T00:00:00.000Z',
            ),
          ).toBe(true);
          expect(b.get(done)).toMatchObject({
            status: 'completed',
            output: [{ type: 'Patient', count: 10 }],
          });
          expect(b.expired(new Date().toISOString()).map((j) => j.id)).toContain(done);
          // Cancelled on B: A's next progress finds it gone and stops; finishing it changes nothing.
          b.remove(cancelled);
          expect(a.progress(cancelled, 20, 1)).toBe(false);
          expect(a.finish(cancelled, { status: 'failed', error: 'x' }, new Date().toISOString())).toBe(false);
          expect(b.get(cancelled)).toBeUndefined();
        } finally {
          a.close();
          b.close();
        }
      });

      test('only the jobs of a process that has stopped count as orphaned', async () => {
        const mine = StateJobStore.open(state.config, state.dataDir, state.services.instance);
        // A process before this one (a restart) or beside it (another replica).
        const before = StateJobStore.open(state.config, state.dataDir, randomUUID());
        const replica = await state.replica();
        const beside = StateJobStore.open(state.config, state.dataDir, replica.instance);
        try {
          const [own, old, other] = [randomUUID(), randomUUID(), randomUUID()];
          mine.create(job(own));
          before.create(job(old));
          beside.create(job(other));
          const unfinished = mine.unfinished().map((j) => j.runner);
          expect(mine.unfinished().map((j) => j.id)).toEqual(expect.arrayContaining([old]));
          expect(mine.unfinished().map((j) => j.id)).not.toContain(own);
          expect(await state.services.gone(state.services.instance)).toBe(false);
          expect(await state.services.gone(mine.get(old)?.runner)).toBe(true);
          expect(await state.services.gone(undefined)).toBe(true);
          expect(unfinished).not.toContain(state.services.instance);
          if (state.config.kind === 'postgres') {
            // A running replica is not gone; once it stops (its connection closes), it is.
            expect(mine.unfinished().map((j) => j.id)).toContain(other);
            expect(await state.services.gone(replica.instance)).toBe(false);
            await replica.close();
            expect(await state.services.gone(replica.instance)).toBe(true);
          }
        } finally {
          mine.close();
          before.close();
          beside.close();
        }
      });
    });

    // What the write path knows of a stored Patient (src/store/patientFacts.ts), shared by the replicas:
    // a fact is known only from a write's answer that no other write overlapped, or from a read that no
    // write began after; while a write is under way, or after one with an unknown outcome, nothing is.
    describe('patient facts', () => {
      const known = (facts: PatientFacts, id: string) => {
        const found = facts.lookup(id);
        return 'units' in found ? found.units : undefined;
      };
      const ticket = (facts: PatientFacts, id: string) => {
        const found = facts.lookup(id);
        return 'ticket' in found ? found.ticket : undefined;
      };
      let one: PatientFacts;
      let other: PatientFacts;
      beforeAll(() => {
        one = PatientFacts.open(state.dataDir, state.config);
        other = PatientFacts.open(state.dataDir, state.config);
      });
      afterAll(async () => {
        await one.close();
        await other.close();
      });

      test("a write's answer is known to every replica; a write under way makes it unknown", async () => {
        const id = randomUUID();
        expect(known(other, id)).toBeUndefined();
        one.end(await one.begin([id]), () => ['999001']);
        expect(known(other, id)).toEqual(['999001']);
        const begun = await other.begin([id]);
        expect(known(one, id)).toBeUndefined();
        // No reader may state what it read while the write is under way.
        expect(ticket(one, id)).toBeUndefined();
        other.end(begun, () => ['999001', '999002']);
        expect(known(one, id)).toEqual(['999001', '999002']);
      });

      test('overlapping writes, and a write whose outcome is unknown, leave nothing known', async () => {
        const id = randomUUID();
        const first = await one.begin([id]);
        const second = await other.begin([id]);
        one.end(first, () => ['999001']);
        other.end(second, () => ['999002']);
        expect(known(one, id)).toBeUndefined();
        const unanswered = randomUUID();
        one.end(await one.begin([unanswered]), () => ['999001']);
        await one.begin([unanswered]); // never ended: the store did not answer
        expect(known(other, unanswered)).toBeUndefined();
        expect(ticket(other, unanswered)).toBeUndefined();
      });

      test('a reader states what it read only if no write began since it looked', async () => {
        const id = randomUUID();
        const looked = ticket(one, id);
        expect(looked).toBeDefined();
        other.end(await other.begin([id]), () => undefined); // e.g. a delete: nothing to state
        one.learn(id, looked as NonNullable<typeof looked>, ['999001']);
        expect(known(one, id)).toBeUndefined();
        const again = ticket(one, id);
        one.learn(id, again as NonNullable<typeof again>, ['999002']);
        expect(known(other, id)).toEqual(['999002']);
      });

      test('a write that may change any Patient makes every fact unknown; an erased Patient leaves no row', async () => {
        const id = randomUUID();
        const erased = randomUUID();
        one.end(await one.begin([id, erased]), (patientId) => [patientId === id ? '999001' : '999002']);
        const before = ticket(other, randomUUID());
        await other.beginAll();
        expect(known(one, id)).toBeUndefined();
        expect(ticket(one, id)).toBeUndefined();
        await other.endAll([erased]);
        expect(known(one, id)).toBeUndefined();
        expect(ticket(one, erased)).toEqual(expect.objectContaining({ seq: null }));
        // What a reader looked at before such a write is not stated after it.
        one.learn(id, { seq: null, epoch: (before as NonNullable<typeof before>).epoch }, ['999003']);
        one.learn(erased, { seq: null, epoch: (before as NonNullable<typeof before>).epoch }, ['999003']);
        expect(known(one, erased)).toBeUndefined();
      });
    });

    describe('person locks', () => {
      /** Order of events while `second` waits for what `first` holds. */
      async function contend(
        first: StateServices,
        second: StateServices,
        modes: ['shared' | 'exclusive', 'shared' | 'exclusive'],
        keys: [string[], string[]],
      ): Promise<string[]> {
        const events: string[] = [];
        const releaseFirst = await first.personLocks('person').acquire(keys[0], modes[0]);
        events.push('first holds');
        const waiting = second
          .personLocks('person')
          .acquire(keys[1], modes[1])
          .then((release) => {
            events.push('second holds');
            return release;
          });
        // A round trip through the other replica's state: the second acquire has been asked for by then.
        await second.replayCache.remember(`probe ${randomBytes(8).toString('hex')}`, Date.now() + 1000);
        await new Promise((resolve) => setImmediate(resolve));
        events.push('first releases');
        releaseFirst();
        (await waiting)();
        return events;
      }

      test('an exclusive holder keeps out another replica until it releases', async () => {
        const replica = await state.replica();
        const key = `patient:${randomBytes(4).toString('hex')}`;
        expect(
          await contend(state.services, replica, ['exclusive', 'exclusive'], [[key], ['other', key]]),
        ).toEqual(['first holds', 'first releases', 'second holds']);
        expect(await contend(state.services, replica, ['shared', 'exclusive'], [[key], [key]])).toEqual([
          'first holds',
          'first releases',
          'second holds',
        ]);
      });

      test('shared holders share, and other keys or other families do not wait', async () => {
        const replica = await state.replica();
        const key = `patient:${randomBytes(4).toString('hex')}`;
        // Each second acquire is awaited while the first is held: were it made to wait, the test would hang.
        const both = async (
          modes: ['shared' | 'exclusive', 'shared' | 'exclusive'],
          keys: [string, string],
          families: ['person' | 'link', 'person' | 'link'] = ['person', 'person'],
        ): Promise<void> => {
          const first = await state.services.personLocks(families[0]).acquire([keys[0]], modes[0]);
          const second = await replica.personLocks(families[1]).acquire([keys[1]], modes[1]);
          second();
          first();
        };
        await both(['shared', 'shared'], [key, key]);
        await both(['exclusive', 'exclusive'], [key, `${key}-2`]);
        await both(['exclusive', 'exclusive'], [key, key], ['person', 'link']);
      });
    });
  });
}
