/**
 * Ingest benchmark (issue 18; not a test). Starts the server as `npm start` does (a child process
 * `node bin/norpain.js serve`, development mode, embedded store, on a fresh DATA_DIR with development
 * keys), enrols persons through HTTP with a clinic token from `norpain token`, then drives it with
 * autocannon at 1, 4 and 16 concurrent clients, each posting completed baseline QuestionnaireResponses
 * (98 answered items, the cohort generator's realistic answers) about the enrolled persons. Prints
 * responses/s, p50/p95/p99 and the server's CPU time per response (from /proc: on a loaded machine the
 * honest figure) per level, and fails unless every response was 201 Created.
 *
 *   npx tsx bench/ingest/run.ts [--duration 10] [--persons 50] [--levels 1,4,16] [--profile] [--servers 1]
 *
 * `--servers 2` starts that many independent servers, each with its own DATA_DIR and store, and splits
 * every level's clients between them. That is not a deployment (two registries that know nothing of each
 * other); it is the most a second core could give, with nothing shared between the processes to wait on.
 *
 * With --profile the server runs under `node --cpu-prof`; after the load it is stopped (SIGINT, a clean
 * shutdown) and the profile's top self-time and total-time functions, self time by file and time per
 * response by stage of the write path are printed.
 * The profile covers the whole life of the server, start-up included, so run long enough (--duration)
 * for the load to dominate. All people are synthetic (month + 80 national ids).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import type { Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import { seededRandom } from '../../src/identity';
import { syntheticIdentifier } from '../../src/identity/synthetic';
import { NORPAIN_QUESTIONNAIRE_URLS } from '../../src/validation/questionnaire';
import { freePort } from '../../test/crash/harness';
import { answerQuestionnaire } from '../../test/generators/answers';
import { summariseCpuProfile, type CpuProfile } from './profile';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'norpain.js');

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const DURATION = Number(option('duration') ?? 10);
const PERSONS = Number(option('persons') ?? 50);
const LEVELS = (option('levels') ?? '1,4,16').split(',').map(Number);
const PROFILE = process.argv.includes('--profile');
const SERVERS = Number(option('servers') ?? 1);
const ORG = '999001';

interface Server {
  base: string;
  /** The server process's CPU time so far (user + system), in ms: what a response costs on a loaded machine. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** A process's user + system CPU time from /proc/<pid>/stat (Linux), in ms. */
function processCpuMs(pid: number): number {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name, in clock ticks (100/s).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** `npm start` as a child process, ready once /fhir/metadata answers. */
async function startServer(env: NodeJS.ProcessEnv, profileDir: string | undefined): Promise<Server> {
  const port = await freePort();
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, CLI, 'serve'], {
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}/fhir`;
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`the server exited during start-up (code ${child.exitCode})`);
    }
    try {
      const response = await fetch(`${base}/metadata`);
      await response.arrayBuffer();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the server did not answer /fhir/metadata within 300 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return {
    base,
    cpuMs: () => processCpuMs(child.pid as number),
    async stop() {
      child.kill('SIGINT');
      const code = await exited;
      if (code !== 0) {
        throw new Error(`the server stopped with code ${code}`);
      }
    },
  };
}

function clinicToken(env: NodeJS.ProcessEnv): string {
  return execFileSync(process.execPath, [CLI, 'token', '--role', 'clinic', '--org', ORG, '--expires', '2h'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  }).trim();
}

/** Registers the persons (a Patient each, with a synthetic fødselsnummer); returns their Patient ids. */
async function enrol(base: string, token: string, persons: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < persons; i++) {
    const patient: Patient = {
      resourceType: 'Patient',
      identifier: [syntheticIdentifier('fnr')],
      gender: i % 2 === 0 ? 'female' : 'male',
      birthDate: '1975-03-14',
    };
    const response = await fetch(`${base}/Patient`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(patient),
    });
    const body = (await response.json()) as Patient;
    if (response.status !== 201 || !body.id) {
      throw new Error(`enrolling a person answered ${response.status}`);
    }
    ids.push(body.id);
  }
  return ids;
}

/** One baseline response per person, as a clinic's EPR sends it (the server recomputes the scores). */
function baselineBodies(patientIds: readonly string[]): string[] {
  const random = seededRandom(18);
  return patientIds.map((id) => {
    const response: QuestionnaireResponse = {
      ...answerQuestionnaire(NORPAIN_QUESTIONNAIRE_URLS.baseline, {
        severity: random(),
        improvement: 0,
        random,
      }),
      subject: { reference: `Patient/${id}` },
      authored: '2026-03-02T12:00:00+01:00',
    };
    return JSON.stringify(response);
  });
}

function countAnswered(body: string): number {
  let n = 0;
  const walk = (items: QuestionnaireResponse['item']): void => {
    for (const item of items ?? []) {
      if (item.answer?.length) n++;
      walk(item.item);
    }
  };
  walk((JSON.parse(body) as QuestionnaireResponse).item);
  return n;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

interface Level {
  clients: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  total: number;
  /** The server's CPU time per response during the level. */
  cpuPerResponse: number;
}

/** A started server with its clinic token and the bodies to post about its enrolled persons. */
interface Target {
  server: Server;
  token: string;
  bodies: readonly string[];
}

/** One level: `clients` connections split evenly between the targets (as many as get one), all at once. */
async function drive(
  all: readonly Target[],
  clients: number,
  length: { duration: number } | { amount: number },
): Promise<Level> {
  const targets = all.slice(0, Math.min(clients, all.length));
  const latencies: number[] = [];
  const cpuBefore = targets.map((t) => t.server.cpuMs());
  const results = await Promise.all(
    targets.map((target, i) => {
      let next = 0;
      const instance = autocannon({
        url: `${target.server.base}/QuestionnaireResponse`,
        connections: Math.floor(clients / targets.length) + (i < clients % targets.length ? 1 : 0),
        ...('amount' in length ? { amount: Math.ceil(length.amount / targets.length) } : length),
        method: 'POST',
        headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/fhir+json' },
        requests: [
          {
            setupRequest: (request) => ({ ...request, body: target.bodies[next++ % target.bodies.length] }),
          },
        ],
      });
      instance.on('response', (_client, _status, _bytes, responseTime: number) =>
        latencies.push(responseTime),
      );
      return instance;
    }),
  );
  const cpu = targets.reduce((sum, t, i) => sum + t.server.cpuMs() - cpuBefore[i], 0);
  let created = 0;
  let perSecond = 0;
  for (const result of results) {
    const statuses = Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => `${code}: ${s.count}`);
    const ok = Number(result.statusCodeStats?.['201']?.count ?? 0);
    if (result.errors > 0 || result.timeouts > 0 || ok === 0) {
      throw new Error(
        `${clients} clients: not every response was 201 (${statuses.join(', ')}; ${result.errors} errors, ` +
          `${result.timeouts} timeouts)`,
      );
    }
    created += ok;
    perSecond += ok / result.duration;
  }
  if (created !== latencies.length) {
    throw new Error(`${clients} clients: ${latencies.length - created} of the responses were not 201`);
  }
  latencies.sort((a, b) => a - b);
  return {
    clients,
    perSecond,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    total: created,
    cpuPerResponse: cpu / created,
  };
}

/** A fresh DATA_DIR and the environment `npm start` gets in development, for one server. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-bench-ingest-')),
    STORE: 'embedded',
    LOG_LEVEL: 'warn',
    // The rate limiter would turn the load into 429s: it protects production, it is not what is measured.
    RATE_LIMIT_PER_MINUTE: '0',
  };
  delete env.STATE;
  return env;
}

async function main(): Promise<void> {
  if (PROFILE && SERVERS !== 1) throw new Error('--profile profiles one server: leave out --servers');
  const profileDir = PROFILE
    ? fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-bench-ingest-prof-'))
    : undefined;
  const envs = Array.from({ length: SERVERS }, serverEnv);
  const servers: Server[] = [];
  let stopped = false;
  try {
    for (const env of envs) servers.push(await startServer(env, profileDir));
    const targets: Target[] = [];
    for (const [i, server] of servers.entries()) {
      const token = clinicToken(envs[i]);
      targets.push({ server, token, bodies: baselineBodies(await enrol(server.base, token, PERSONS)) });
    }
    const body = targets[0].bodies[0];
    console.log(
      `${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}; ` +
        `${SERVERS > 1 ? `${SERVERS} independent servers, ` : ''}${PERSONS} persons enrolled` +
        `${SERVERS > 1 ? ' in each' : ''}; baseline QuestionnaireResponse of ${countAnswered(body)} answered items, ` +
        `${Buffer.byteLength(body)} bytes; ${DURATION} s per level${PROFILE ? ', under --cpu-prof' : ''}`,
    );
    // Warm-up (JIT, caches, the store's pages): a number of requests, not a time, so that a loaded
    // machine warms up as much; not reported.
    let served = SERVERS * PERSONS + (await drive(targets, 4 * SERVERS, { amount: 40 * SERVERS })).total;
    for (const clients of LEVELS) {
      const l = await drive(targets, clients, { duration: DURATION });
      served += l.total;
      console.log(
        `${String(clients).padStart(2)} clients: ${l.perSecond.toFixed(1).padStart(7)} responses/s, ` +
          `p50 ${l.p50.toFixed(1)} ms, p95 ${l.p95.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms ` +
          `(${l.total} responses, all 201); server CPU ${l.cpuPerResponse.toFixed(2)} ms per response`,
      );
    }
    await Promise.all(servers.map((server) => server.stop()));
    stopped = true;
    if (profileDir) {
      const file = fs.readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error('the server wrote no .cpuprofile');
      const profile = JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8')) as CpuProfile;
      console.log(`\nCPU profile ${path.join(profileDir, file)}`);
      console.log(
        summariseCpuProfile(profile, { top: Number(option('top') ?? 20), root: ROOT, responses: served }),
      );
    }
  } finally {
    if (!stopped) await Promise.all(servers.map((server) => server.stop().catch(() => undefined)));
    for (const env of envs) fs.rmSync(env.DATA_DIR as string, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  // fetch's "fetch failed" says why only in its cause (a reset connection, a refused one).
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined)?.code : undefined;
  console.error(err instanceof Error ? `${err.message}${cause ? ` (${cause})` : ''}` : err);
  process.exit(1);
});
