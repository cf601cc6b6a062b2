import fc from 'fast-check';
import { runAuditVerify } from '../../src/audit/verifyCommand';
import { malformedRequest, send, storeFingerprint, tokensFor } from '../../test/helpers/malformedRequests';
import { startTestServer } from '../../test/helpers/testServer';

/**
 * The malformed-request fuzzer of issue 11 at scale: NORPAIN_FUZZ_RUNS (default 100,000) mutated requests
 * against an in-process server, one at a time, then prints the status mix and what must be zero: 5xx
 * answers, 5xx batch entries, hangs (no answer within 15 s), refused requests that changed the store,
 * and whether `norpain audit verify` passes. Seed: NORPAIN_FUZZ_SEED.
 *
 *   npx tsx bench/fuzz/run.ts
 */
const RUNS = Number(process.env.NORPAIN_FUZZ_RUNS ?? 100_000);
const SEED = Number(process.env.NORPAIN_FUZZ_SEED ?? 20261207);
const CHUNK = 500;

async function main(): Promise<void> {
  const server = await startTestServer({ RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURES_PER_MINUTE: '1000000' });
  const tokens = await tokensFor(server);
  const store = storeFingerprint(server.dataDir);
  const statuses = new Map<number, number>();
  const failures = { status5xx: 0, entry5xx: 0, hangs: 0, persistedWhenRefused: 0 };
  const examples: string[] = [];
  const started = Date.now();
  const arbitrary = malformedRequest({ patientId: 'none', conditionId: 'none' });
  try {
    for (let done = 0; done < RUNS; done += CHUNK) {
      for (const request of fc.sample(arbitrary, {
        numRuns: Math.min(CHUNK, RUNS - done),
        seed: SEED + done,
      })) {
        const before = store.read();
        let status: number;
        try {
          const outcome = await send(server, tokens, request);
          status = outcome.status;
          if (outcome.entryStatuses.some((s) => !(s < 500))) failures.entry5xx++;
        } catch (err) {
          if ((err as Error).name !== 'TimeoutError') throw err;
          failures.hangs++;
          status = 0;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500) {
          failures.status5xx++;
          if (examples.length < 5) examples.push(`${request.method} ${request.path.slice(0, 80)}`);
        }
        if (status >= 400 && store.read() !== before) failures.persistedWhenRefused++;
      }
      process.stderr.write(`\r${Math.min(done + CHUNK, RUNS)}/${RUNS}`);
    }
  } finally {
    store.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const lines: string[] = [];
  const verify = runAuditVerify(server.dataDir, (line) => lines.push(line));
  await server.stop();
  process.stderr.write('\n');
  console.log(
    `fuzz: ${RUNS} malformed requests, seed ${SEED}, ${seconds.toFixed(0)} s (${(RUNS / seconds).toFixed(0)}/s)`,
  );
  console.log('status mix:');
  for (const [status, count] of [...statuses].sort((a, b) => a[0] - b[0])) {
    console.log(`  ${status === 0 ? 'hang' : status}  ${count}  (${((100 * count) / RUNS).toFixed(1)} %)`);
  }
  console.log(
    `5xx: ${failures.status5xx}, 5xx batch entries: ${failures.entry5xx}, hangs: ${failures.hangs}, ` +
      `refused but persisted: ${failures.persistedWhenRefused}`,
  );
  for (const example of examples) console.log(`  e.g. ${example}`);
  console.log(`audit verify: ${lines.join(' / ')}`);
  process.exitCode =
    failures.status5xx + failures.entry5xx + failures.hangs + failures.persistedWhenRefused > 0 ||
    verify !== 0
      ? 1
      : 0;
}

void main();
