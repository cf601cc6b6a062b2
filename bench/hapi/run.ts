/**
 * HAPI benchmark (not a test). In one run, against the same HAPI FHIR JPA server:
 *  1. writes straight to HAPI's REST API (POST Patient);
 *  2. the same writes through the NorPain server (STORE=hapi, in-process on 127.0.0.1, a registry-admin
 *     dev token), i.e. with authentication, validation, pseudonymisation and audit in the path;
 * and prints writes/s, p50 and p95 of each and the ratio (goal: the server adds at most 15 % to HAPI's
 * p95). Then 3. erasure of a patient compartment on HAPI (HapiStore.erasePatientCompartment: search,
 * history scan, delete, $expunge, verification) for a patient with a typical amount of data.
 *
 *   scripts/ci/start-hapi.sh            # prints HAPI_URL
 *   HAPI_URL=http://127.0.0.1:8090/fhir npx tsx bench/hapi/run.ts [--writes 200] [--erasures 5]
 *
 * Requests are sequential (one client), bounded in number, and go only to 127.0.0.1. All data synthetic.
 */
import { randomUUID } from 'node:crypto';
import type { Encounter, Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import { syntheticIdentifier } from '../../src/identity/synthetic';
import { HapiStore } from '../../src/store/hapi';
import { startTestServer } from '../../test/helpers/testServer';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const WRITES = arg('writes', 200);
const ERASURES = arg('erasures', 5);
const WARMUP = 20;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Figures {
  perSecond: number;
  p50: number;
  p95: number;
}

async function timeWrites(n: number, write: (i: number) => Promise<void>): Promise<Figures> {
  for (let i = 0; i < WARMUP; i++) {
    await write(-1 - i);
  }
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await write(i);
    times.push(performance.now() - t0);
  }
  const elapsed = (performance.now() - start) / 1000;
  times.sort((a, b) => a - b);
  return { perSecond: n / elapsed, p50: percentile(times, 50), p95: percentile(times, 95) };
}

function patient(i: number): Patient {
  return { resourceType: 'Patient', gender: i % 2 === 0 ? 'female' : 'male', birthDate: '1975-03-14' };
}

/** What a clinic sends: a Patient with a (synthetic) fødselsnummer, which the server pseudonymises. */
const withNationalId = (i: number): Patient => ({ ...patient(i), identifier: [syntheticIdentifier('fnr')] });

/** What the server hands HAPI: the same Patient with only a registry pseudonym. */
const withPseudonym = (i: number): Patient => ({
  ...patient(i),
  identifier: [{ system: 'https://norpain.no/fhir/sid/registry-pseudonym', value: `1-${randomUUID()}` }],
});

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...headers },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  if (response.status !== 201) {
    throw new Error(`POST ${url} answered ${response.status}`);
  }
}

const show = (f: Figures) =>
  `${f.perSecond.toFixed(1)} writes/s, p50 ${f.p50.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms`;

async function main(): Promise<void> {
  const hapiUrl = process.env.HAPI_URL;
  if (!hapiUrl) {
    throw new Error('Set HAPI_URL (scripts/ci/start-hapi.sh prints it)');
  }
  const server = await startTestServer({ STORE: 'hapi', HAPI_URL: hapiUrl, LOG_LEVEL: 'warn' });
  try {
    const token = await server.token('registry-admin');
    // Interleaved in one run so that both see the same HAPI, database size and machine load.
    const direct = await timeWrites(WRITES, (i) => post(`${hapiUrl}/Patient`, withPseudonym(i)));
    const through = await timeWrites(WRITES, (i) =>
      post(`${server.baseUrl}/Patient`, withNationalId(i), { authorization: `Bearer ${token}` }),
    );
    console.log(`HAPI direct:          ${show(direct)}`);
    console.log(`through NorPain:      ${show(through)}`);
    console.log(
      `ratio (NorPain/HAPI): p50 ${(through.p50 / direct.p50).toFixed(2)}, p95 ${(through.p95 / direct.p95).toFixed(2)}, ` +
        `throughput ${(direct.perSecond / through.perSecond).toFixed(2)} (goal: p95 ratio ≤ 1.15)`,
    );
  } finally {
    await server.stop();
  }

  const store = new HapiStore(hapiUrl);
  const times: number[] = [];
  let versions = 0;
  for (let n = 0; n < ERASURES; n++) {
    const { resource: p } = await store.create<Patient>(withPseudonym(n));
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
  console.log(
    `erasure on HAPI: ${ERASURES} patients of 6 resources (${versions / ERASURES} versions) each: ` +
      `p50 ${percentile(times, 50).toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
