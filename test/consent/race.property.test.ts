import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { issueDevToken, type DevTokenRequest } from '../../src/auth/devTokens';
import { loadConfig } from '../../src/config';
import { seededRandom } from '../../src/identity/synthetic';
import { createLogger } from '../../src/logging/logger';
import { createServer } from '../../src/server';
import { EmbeddedStore } from '../../src/store/embedded';
import type { FhirStore } from '../../src/store/FhirStore';
import type { TestServer } from '../helpers/testServer';
import { answersByTag, people, type RaceOpKind, sendRaceOp } from './fixtures';

/**
 * No race (issue 4): random interleavings — sequential and concurrent (Promise.all over HTTP) — of
 * submissions, reservations and withdrawals for a few dozen synthetic people. After every step the
 * store must hold no data of anyone currently reserved, and exactly what was accepted (since their
 * last reservation) for everyone else.
 *
 * Fixed seed in CI. Run longer with e.g.
 *   NORPAIN_PROPERTY_RUNS=200 NORPAIN_PROPERTY_SEED=$RANDOM npx jest test/consent/race.property.test.ts
 */
const RUNS = Number(process.env.NORPAIN_PROPERTY_RUNS ?? 8);
const SEED = Number(process.env.NORPAIN_PROPERTY_SEED ?? 20240502);
const PEOPLE = 24;

type Op = { kind: RaceOpKind; person: number };

const kind = fc.constantFrom<Op['kind']>('submit', 'submit', 'submit-by-identifier', 'reserve', 'withdraw');
/** A step: one operation, or several at once, often about one person (so that they really race). At
 * most one reserve/withdraw per person in a step, so the model knows the status after it. */
const step = fc
  .integer({ min: 0, max: PEOPLE - 1 })
  .chain((focus) =>
    fc.array(
      fc.record({
        kind,
        person: fc.oneof(fc.constant(focus), fc.integer({ min: 0, max: PEOPLE - 1 })),
      }),
      { minLength: 1, maxLength: 5 },
    ),
  )
  .map((ops: Op[]) => {
    const changing = new Set<number>();
    return ops.filter((o) => {
      if (o.kind !== 'reserve' && o.kind !== 'withdraw') {
        return true;
      }
      if (changing.has(o.person)) {
        return false;
      }
      changing.add(o.person);
      return true;
    });
  });

let server: TestServer;
let clinic: string;
let admin: string;

/**
 * The embedded store answers synchronously, so in one process a write's check and commit would run
 * without a pause in between and a missing lock could go unnoticed. This gives the real store the
 * latency of a networked one (HAPI): every call yields to the event loop for 0–2 ms first, so requests
 * really interleave between the exclusion check and the commit.
 */
function withLatency(store: FhirStore): FhirStore {
  const random = seededRandom(SEED);
  return new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function' || name === 'close' || name === 'ping') {
        return value;
      }
      return async (...args: unknown[]) => {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 3)));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

beforeAll(async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-race-'));
  const config = loadConfig({ NODE_ENV: 'development', DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
  const store = withLatency(EmbeddedStore.open(EmbeddedStore.defaultFile(dataDir)));
  const logger = createLogger({ level: 'silent', sink: () => undefined });
  const norpain = await createServer(config, { store, identityEnv: {}, logger });
  const listening = await norpain.listen(0, '127.0.0.1');
  const token = (request: DevTokenRequest) => issueDevToken(config, request);
  server = {
    baseUrl: `${listening.url}/fhir`,
    origin: listening.url,
    dataDir,
    config,
    server: norpain,
    logs: [],
    token: (role, opts = {}) => token({ role, ...opts }),
    stop: async () => {
      await norpain.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  clinic = await token({ role: 'clinic', org: '999001' });
  admin = await token({ role: 'registry-admin' });
});

afterAll(async () => {
  await server.stop();
});

test("a reservation never leaves data of the person behind, and never loses anyone else's", async () => {
  let run = 0;
  let answerNo = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 25 }), async (steps) => {
      run++;
      const fnrs = people(SEED + run * 7919, PEOPLE);
      const tag = (p: number) => `run${run}-p${p}`;
      const reserved = new Set<number>();
      const accepted = new Map<number, Set<string>>();
      for (const ops of steps) {
        const reserving = new Set(ops.filter((o) => o.kind === 'reserve').map((o) => o.person));
        const withdrawing = new Set(ops.filter((o) => o.kind === 'withdraw').map((o) => o.person));
        const wasReserved = new Set(reserved);
        const results = await Promise.all(
          ops.map(async (o) => {
            const answer = `a${++answerNo}`;
            const status = await sendRaceOp(
              server,
              { clinic, admin },
              { kind: o.kind, fnr: fnrs[o.person], tag: tag(o.person), answer },
            );
            return { o, status, answer };
          }),
        );
        for (const { o, status, answer } of results) {
          const p = o.person;
          if (o.kind === 'reserve') {
            expect([200, 201]).toContain(status);
          } else if (o.kind === 'withdraw') {
            expect(status).toBe(wasReserved.has(p) ? 200 : 404);
          } else if (reserving.has(p)) {
            expect([200, 201, 403]).toContain(status); // before the reservation (erased) or after (refused)
          } else if (withdrawing.has(p)) {
            expect([200, 201, 403]).toContain(status); // before the withdrawal (refused) or after
            if (status !== 403) {
              accepted.set(p, (accepted.get(p) ?? new Set()).add(answer as string));
            }
          } else if (wasReserved.has(p)) {
            expect(status).toBe(403);
          } else {
            expect([200, 201]).toContain(status);
            accepted.set(p, (accepted.get(p) ?? new Set()).add(answer as string));
          }
        }
        for (const p of reserving) {
          reserved.add(p);
          accepted.delete(p);
        }
        for (const p of withdrawing) {
          reserved.delete(p);
        }
        const held = await answersByTag(server, admin);
        for (let p = 0; p < PEOPLE; p++) {
          const inStore = [...(held.get(tag(p)) ?? [])].sort();
          if (reserved.has(p)) {
            expect(inStore).toEqual([]);
          } else {
            expect(inStore).toEqual([...(accepted.get(p) ?? [])].sort());
          }
        }
      }
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
}, 600_000);
