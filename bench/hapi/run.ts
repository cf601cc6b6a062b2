/**
 * HAPI benchmark (not a test). In one run, against the same HAPI FHIR JPA server:
 *  1. writes through the NorPain server (STORE=hapi, in-process on 127.0.0.1, a clinic's dev token): a
 *     Patient with a synthetic fødselsnummer, i.e. authentication, validation, exclusion,
 *     pseudonymisation, ownership, persist and audit in the path;
 *  2. the same writes straight to HAPI's REST API: for each write through the server, the request the
 *     server sent HAPI to persist it (same method, headers and body; a fresh id and pseudonym), so both
 *     sides store exactly the same resources. The two kinds alternate (and swap order each round) so both
 *     see the same HAPI, database size and machine load; one client, sequential, after a warm-up;
 * and prints writes/s, p50 and p95 of each and the ratio (goal: the server adds at most 15 % to HAPI's
 * p95), with a breakdown of a write through the server: HAPI round trips, time waiting for HAPI, and the
 * server's own time. Then 3. erasure of a patient compartment on HAPI (HapiStore.erasePatientCompartment:
 * search, history scan, delete, $expunge, verification) for a patient with a typical amount of data.
 *
 *   scripts/ci/start-hapi.sh            # prints HAPI_URL
 *   HAPI_URL=http://127.0.0.1:8090/fhir npx tsx bench/hapi/run.ts [--writes 300] [--erasures 5]
 *     [--resource QuestionnaireResponse] [--clients 8]
 *
 * Requests are bounded in number and go only to 127.0.0.1. All data synthetic.
 */
import { randomUUID } from 'node:crypto';
import type { Encounter, Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import { registryPseudonymSystem } from '../../src/identity/pseudonym';
import { syntheticIdentifier } from '../../src/identity/synthetic';
import { HapiStore, registryDefinitions } from '../../src/store/hapi';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { fillResponse } from '../../test/validation/responses';
import { startTestServer } from '../../test/helpers/testServer';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const WRITES = arg('writes', 300);
const ERASURES = arg('erasures', 5);
const WARMUP = arg('warmup', 30);
const CLIENTS = arg('clients', 8);
/** Patient (default): a clinic registers a person; QuestionnaireResponse: a clinic sends a filled form. */
const RESOURCE = process.argv.includes('--resource')
  ? process.argv[process.argv.indexOf('--resource') + 1]
  : 'Patient';
if (RESOURCE !== 'Patient' && RESOURCE !== 'QuestionnaireResponse') {
  throw new Error('--resource is Patient or QuestionnaireResponse');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Figures {
  perSecond: number;
  p50: number;
  p95: number;
}

function figures(times: number[]): Figures {
  const sorted = [...times].sort((a, b) => a - b);
  const total = times.reduce((a, b) => a + b, 0) / 1000;
  return { perSecond: times.length / total, p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
}

const show = (f: Figures) =>
  `${f.perSecond.toFixed(1)} writes/s, p50 ${f.p50.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms`;

/** What a clinic sends: a Patient with a (synthetic) fødselsnummer, which the server pseudonymises. */
function patient(i: number): Patient {
  return {
    resourceType: 'Patient',
    identifier: [syntheticIdentifier('fnr')],
    gender: i % 2 === 0 ? 'female' : 'male',
    birthDate: '1975-03-14',
  };
}

/** One request the server sent HAPI, as fetch saw it. */
interface HapiCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** When it was sent (performance.now()) and how long it took. */
  start: number;
  ms: number;
}

/** The time at least one of the calls was under way: calls may overlap (a look-up beside the write). */
function timeWaiting(calls: HapiCall[]): number {
  let total = 0;
  let end = -Infinity;
  for (const call of [...calls].sort((a, b) => a.start - b.start)) {
    total += Math.max(0, call.start + call.ms - Math.max(call.start, end));
    end = Math.max(end, call.start + call.ms);
  }
  return total;
}

/**
 * Watches the server's requests to HAPI (the server runs in this process and HapiClient uses the global
 * fetch): while a write through the server is in flight, every request to HAPI_URL is recorded.
 */
function watchHapiCalls(hapiUrl: string): { during<T>(work: () => Promise<T>): Promise<[T, HapiCall[]]> } {
  const original = globalThis.fetch;
  let recording: HapiCall[] | undefined;
  globalThis.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (recording === undefined || !url.startsWith(hapiUrl)) {
      return original(input, init);
    }
    const calls = recording;
    const t0 = performance.now();
    const response = await original(input, init);
    const text = await response.text();
    calls.push({
      method: init?.method ?? 'GET',
      url,
      headers: { ...(init?.headers as Record<string, string>) },
      body: typeof init?.body === 'string' ? init.body : undefined,
      start: t0,
      ms: performance.now() - t0,
    });
    return new Response(text, { status: response.status, headers: response.headers });
  };
  return {
    async during(work) {
      recording = [];
      try {
        const result = await work();
        return [result, recording];
      } finally {
        recording = undefined;
      }
    },
  };
}

/** The server's persisting request again, for another (new) person: fresh id, fresh pseudonym. */
async function replay(call: HapiCall): Promise<void> {
  const id = randomUUID();
  const body = JSON.parse(call.body ?? '{}') as Patient | QuestionnaireResponse;
  const oldId = body.id as string;
  body.id = id;
  if (body.resourceType === 'Patient') {
    body.identifier = [{ system: registryPseudonymSystem, value: `1-${randomUUID()}` }];
  }
  const response = await fetch(call.url.replace(oldId, id), {
    method: call.method,
    headers: call.headers,
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`${call.method} to HAPI answered ${response.status}`);
  }
}

async function main(): Promise<void> {
  const hapiUrl = process.env.HAPI_URL;
  if (!hapiUrl) {
    throw new Error('Set HAPI_URL (scripts/ci/start-hapi.sh prints it)');
  }
  const server = await startTestServer({ STORE: 'hapi', HAPI_URL: hapiUrl, LOG_LEVEL: 'warn' });
  const watch = watchHapiCalls(hapiUrl);
  try {
    const token = await server.token('clinic');
    const post = async (resource: Patient | QuestionnaireResponse): Promise<Patient> => {
      const response = await fetch(`${server.baseUrl}/${resource.resourceType}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/fhir+json',
          accept: 'application/fhir+json',
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify(resource),
      });
      const body = (await response.json()) as Patient;
      if (response.status !== 201) {
        throw new Error(
          `POST ${resource.resourceType} through the server answered ${response.status}: ${JSON.stringify(body)}`,
        );
      }
      return body;
    };
    // A filled clinician form about one registered person (the server recomputes its scores).
    const form = readNorPainQuestionnaires().find((q) => q.url?.endsWith('/norpain-clinician-episode'));
    if (RESOURCE === 'QuestionnaireResponse' && !form) throw new Error('clinician Questionnaire missing');
    const subject = RESOURCE === 'QuestionnaireResponse' ? await post(patient(0)) : undefined;
    const resourceFor = (i: number, about: Patient | undefined = subject): Patient | QuestionnaireResponse =>
      form && about
        ? { ...fillResponse(form, {}, Math.abs(i) + 1), subject: { reference: `Patient/${about.id}` } }
        : patient(i);
    const throughServer = async (i: number): Promise<HapiCall[]> => {
      const [, calls] = await watch.during(() => post(resourceFor(i)));
      return calls;
    };
    const persisting = (calls: HapiCall[]): HapiCall => {
      const writes = calls.filter((c) => c.method !== 'GET');
      if (writes.length !== 1) {
        throw new Error(`expected one persisting request to HAPI per write, saw ${writes.length}`);
      }
      return writes[0];
    };
    const through: number[] = [];
    const direct: number[] = [];
    const roundTrips: number[] = [];
    const waiting: number[] = [];
    // The direct write replays the persisting request of the latest write through the server; which of
    // the pair goes first alternates, so neither side always meets a freshly busy HAPI.
    let lastCall: HapiCall | undefined;
    const viaServer = async (i: number): Promise<void> => {
      const t0 = performance.now();
      const calls = await throughServer(i);
      if (i >= 0) {
        through.push(performance.now() - t0);
        roundTrips.push(calls.length);
        if (process.env.BENCH_TRACE && i < 2)
          console.log(calls.map((c) => `${c.method} ${c.url.slice(hapiUrl.length)} ${c.ms.toFixed(1)}ms`));
        waiting.push(timeWaiting(calls));
      }
      lastCall = persisting(calls);
    };
    const straight = async (i: number): Promise<void> => {
      const t0 = performance.now();
      await replay(lastCall as HapiCall);
      if (i >= 0) {
        direct.push(performance.now() - t0);
      }
    };
    for (let i = -WARMUP; i < WRITES; i++) {
      if (lastCall === undefined || i % 2 === 0) {
        await viaServer(i);
        await straight(i);
      } else {
        await straight(i);
        await viaServer(i);
      }
    }
    const d = figures(direct);
    const t = figures(through);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const own = through.map((ms, k) => ms - waiting[k]).sort((a, b) => a - b);
    console.log(
      `${WRITES} ${RESOURCE} writes each way (after ${WARMUP} warm-up rounds), one client, sequential`,
    );
    console.log(`HAPI direct:          ${show(d)}`);
    console.log(`through NorPain:      ${show(t)}`);
    console.log(
      `ratio (NorPain/HAPI): p50 ${(t.p50 / d.p50).toFixed(2)}, p95 ${(t.p95 / d.p95).toFixed(2)}, ` +
        `throughput ${(d.perSecond / t.perSecond).toFixed(2)} (goal: p95 ratio <= 1.15)`,
    );
    console.log(
      `per write through NorPain: ${mean(roundTrips).toFixed(2)} HAPI round trips, ` +
        `${mean(waiting).toFixed(1)} ms waiting for HAPI, server's own time p50 ` +
        `${percentile(own, 50).toFixed(1)} ms, p95 ${percentile(own, 95).toFixed(1)} ms`,
    );
    if (CLIENTS > 1) {
      // Each client alternates the two kinds as above; the direct writes replay the last persisting
      // request recorded, so both sides still store the same kind of resource.
      through.length = 0;
      direct.length = 0;
      const perClient = Math.ceil(WRITES / CLIENTS);
      // A person each: writes about one person wait for each other (the person lock), as they should.
      const subjects = subject
        ? await Promise.all(Array.from({ length: CLIENTS }, (_, c) => post(patient(c))))
        : [];
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, c) => {
          for (let k = 0; k < perClient; k++) {
            const i = WRITES + c * perClient + k;
            const timed = async (work: () => Promise<unknown>, into: number[]): Promise<void> => {
              const start = performance.now();
              await work();
              into.push(performance.now() - start);
            };
            const viaServerOnly = () => timed(() => post(resourceFor(i, subjects[c])), through);
            const straightOnly = () => timed(() => replay(lastCall as HapiCall), direct);
            for (const step of k % 2 === 0 ? [viaServerOnly, straightOnly] : [straightOnly, viaServerOnly]) {
              await step();
            }
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const dc = figures(direct);
      const tc = figures(through);
      console.log(
        `${CLIENTS} concurrent clients, ${perClient} writes each way per client (${seconds.toFixed(1)} s):`,
      );
      console.log(`HAPI direct:          p50 ${dc.p50.toFixed(1)} ms, p95 ${dc.p95.toFixed(1)} ms`);
      console.log(`through NorPain:      p50 ${tc.p50.toFixed(1)} ms, p95 ${tc.p95.toFixed(1)} ms`);
      console.log(
        `ratio (NorPain/HAPI): p50 ${(tc.p50 / dc.p50).toFixed(2)}, p95 ${(tc.p95 / dc.p95).toFixed(2)} ` +
          `(goal: p95 ratio <= 1.15)`,
      );
    }
  } finally {
    await server.stop();
  }

  const store = new HapiStore(hapiUrl, registryDefinitions([]), {
    databaseUrl: process.env.HAPI_DATABASE_URL,
  });
  const times: number[] = [];
  let versions = 0;
  for (let n = 0; n < ERASURES; n++) {
    const { resource: p } = await store.create<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: registryPseudonymSystem, value: `1-${randomUUID()}` }],
    });
    const subject = { reference: `Patient/${p.id}` };
    const enc = await store.create<Encounter>({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject,
    });
    for (let i = 0; i < 4; i++) {
      const qr: QuestionnaireResponse = {
        resourceType: 'QuestionnaireResponse',
        status: 'completed',
        subject,
        encounter: { reference: `Encounter/${enc.resource.id}` },
        item: Array.from({ length: 40 }, (_, k) => ({ linkId: `q${k}`, answer: [{ valueInteger: k % 11 }] })),
      };
      const { resource } = await store.create(qr);
      await store.update({ ...resource, id: resource.id as string, status: 'amended' });
    }
    const t0 = performance.now();
    const receipt = await store.erasePatientCompartment(p.id as string);
    times.push(performance.now() - t0);
    versions += receipt.versionsErased;
    if (receipt.residual !== 0) {
      throw new Error(`erasure left ${receipt.residual} resources behind`);
    }
  }
  times.sort((a, b) => a - b);
  if (ERASURES <= 0) {
    return;
  }
  console.log(
    `erasure on HAPI: ${ERASURES} patients of 6 resources (${versions / ERASURES} versions) each: ` +
      `p50 ${percentile(times, 50).toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
