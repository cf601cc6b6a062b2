/**
 * Replica benchmark (not a test; issue 17). Throughput of Patient writes (a clinic registering persons:
 * authentication, validation, exclusion, pseudonymisation with the vault, persist on HAPI, audit) at 16
 * concurrent clients, against one `norpain serve` process and then against two sharing one PostgreSQL
 * state (STATE=postgres) and one HAPI FHIR JPA server, the clients spread evenly over them.
 *
 *   scripts/ci/start-hapi.sh                       # prints HAPI_URL
 *   scripts/ci/create-state-db.sh                  # prints STATE_DATABASE_URL
 *   HAPI_URL=… STATE_DATABASE_URL=… npx tsx bench/hapi/replicas.ts [--seconds 20] [--clients 16]
 *
 * Each request registers a new synthetic person (distinct persons: no two writes wait for one person's
 * lock). Besides writes per second it reports the CPU time the server processes spent per write (user +
 * system, from /proc, all threads: the state's worker threads too), which a loaded machine inflates far
 * less than wall-clock figures. Uses autocannon; requests go only to 127.0.0.1. The state lives in a schema of its own, dropped at
 * the end. On one machine the replicas share its cores with HAPI and PostgreSQL: the figure shows what a
 * second process adds here, not what a second machine would.
 */
import fs from 'node:fs';
import os from 'node:os';
import { syntheticIdentifier } from '../../src/identity/synthetic';
import type { ServeProcess } from '../../test/crash/harness';
import { startReplicas } from '../../test/helpers/replicas';

/** The part of autocannon's interface used here (the package ships no types). */
interface CannonRequest {
  method: string;
  path: string;
  body?: string;
  setupRequest?: (request: CannonRequest) => CannonRequest;
}
interface CannonResult {
  requests: { total: number };
  latency: { p50: number; p97_5: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (options: {
  url: string;
  connections: number;
  duration: number;
  headers: Record<string, string>;
  requests: CannonRequest[];
}) => Promise<CannonResult>;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const SECONDS = arg('seconds', 20);
const CLIENTS = arg('clients', 16);
const hapiUrl = process.env.HAPI_URL;
const databaseUrl = process.env.STATE_DATABASE_URL;

interface Result {
  requests: number;
  non2xx: number;
  errors: number;
  p50: number;
  p97_5: number;
}

/** `clients` connections for `seconds` against one replica, each request a new person's Patient. */
async function load(replica: ServeProcess, token: string, clients: number, seconds: number): Promise<Result> {
  const result = await autocannon({
    url: replica.base,
    connections: clients,
    duration: seconds,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    requests: [
      {
        method: 'POST',
        path: '/fhir/Patient',
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({
            resourceType: 'Patient',
            identifier: [syntheticIdentifier('fnr')],
            gender: 'female',
            birthDate: '1975-03-14',
          }),
        }),
      },
    ],
  });
  return {
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50: result.latency.p50,
    p97_5: result.latency.p97_5,
  };
}

/** CPU seconds (user + system) a process has used so far, all its threads (Linux /proc). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
/** USER_HZ, 100 on Linux everywhere that matters. */
const TICKS_PER_SECOND = 100;

/** The clients spread evenly over the replicas, all at once; requests per second over all. */
async function run(replicas: ServeProcess[], token: string, seconds: number): Promise<string> {
  const share = CLIENTS / replicas.length;
  const cpuBefore = replicas.reduce((a, r) => a + cpuSeconds(r.pid), 0);
  const results = await Promise.all(replicas.map((r) => load(r, token, share, seconds)));
  const cpu = replicas.reduce((a, r) => a + cpuSeconds(r.pid), 0) - cpuBefore;
  const sum = (pick: (r: Result) => number) => results.reduce((a, r) => a + pick(r), 0);
  const writes = sum((r) => r.requests);
  return (
    `${replicas.length} replica(s), ${CLIENTS} clients, ${seconds} s: ${(writes / seconds).toFixed(1)} writes/s, ` +
    `server CPU ${((cpu / Math.max(writes, 1)) * 1000).toFixed(2)} ms/write ` +
    `(p50 ${results.map((r) => r.p50).join('/')} ms, p97.5 ${results.map((r) => r.p97_5).join('/')} ms, ` +
    `non-2xx ${sum((r) => r.non2xx)}, errors ${sum((r) => r.errors)}; load average ${os.loadavg()[0].toFixed(1)})`
  );
}

async function main(): Promise<void> {
  if (!hapiUrl || !databaseUrl) {
    throw new Error(
      'set HAPI_URL and STATE_DATABASE_URL (scripts/ci/start-hapi.sh, scripts/ci/create-state-db.sh)',
    );
  }
  const { replicas, dispose } = await startReplicas(databaseUrl, {
    STORE: 'hapi',
    HAPI_URL: hapiUrl,
    ...(process.env.HAPI_DATABASE_URL ? { HAPI_DATABASE_URL: process.env.HAPI_DATABASE_URL } : {}),
  });
  try {
    const token = await replicas[0].token('clinic');
    // Warm-up: both processes compile their paths and open their connections.
    await run(replicas, token, 5);
    // One replica alone, then both: each measured twice, in turn, so that a change in the machine's load
    // shows as a spread rather than as a difference between the two.
    for (let round = 0; round < 2; round++) {
      process.stdout.write(`${await run([replicas[0]], token, SECONDS)}\n`);
      process.stdout.write(`${await run(replicas, token, SECONDS)}\n`);
    }
  } finally {
    await dispose();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
