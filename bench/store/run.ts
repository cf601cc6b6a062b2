/**
 * Embedded store benchmark (not a test): loads a synthetic cohort straight into an EmbeddedStore and
 * prints write throughput, search latency for typical researcher queries and erasure time per patient.
 *
 *   npx tsx bench/store/run.ts [--patients N] [--runs 50] [--plans] [--no-erasure]
 *     [--file path/to/fhir.db [--keep] [--reuse]]
 *
 * --plans prints each query's SQL and plan; --reuse runs the searches on a file a run with --keep left;
 * --no-erasure leaves out the erasures.
 *
 * All people are synthetic: a Patient carries only a registry pseudonym, as in the real store.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type { EpisodeOfCare, Organization, Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import { EmbeddedStore } from '../../src/store/embedded';

const PSEUDONYM = 'https://norpain.no/fhir/sid/registry-pseudonym';
const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
const BASELINE = 'https://norpain.no/fhir/Questionnaire/norpain-baseline';
const CLINICS = ['St. Olavs hospital', 'Haukeland', 'Oslo universitetssykehus', 'UNN', 'Sørlandet sykehus'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A deterministic pseudo-random sequence so runs are comparable. */
let seed = 42;
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
const pad = (n: number): string => String(n).padStart(2, '0');
const randomDate = (fromYear: number, years: number): string =>
  `${fromYear + Math.floor(random() * years)}-${pad(1 + Math.floor(random() * 12))}-${pad(1 + Math.floor(random() * 28))}`;

function questionnaireResponse(patientId: string, authored: string): QuestionnaireResponse {
  const item: QuestionnaireResponse['item'] = [];
  for (let i = 0; i < 60; i++) {
    item.push(
      i % 10 === 9
        ? {
            linkId: `q${i}`,
            answer: [{ valueCoding: { system: 'https://norpain.no/fhir/CodeSystem/x', code: 'a1' } }],
          }
        : { linkId: `q${i}`, answer: [{ valueInteger: Math.floor(random() * 11) }] },
    );
  }
  return {
    resourceType: 'QuestionnaireResponse',
    status: 'completed',
    questionnaire: `${BASELINE}|1.0.0`,
    subject: { reference: `Patient/${patientId}` },
    authored: `${authored}T10:00:00+01:00`,
    item,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const patients = Number(arg('patients') ?? 20000);
  const dir = arg('file') ? undefined : mkdtempSync(join(tmpdir(), 'norpain-bench-'));
  const file = arg('file') ?? join(dir as string, 'fhir.db');
  const store = EmbeddedStore.open(file);
  const held = process.argv.includes('--reuse')
    ? ((await store.search(parseSearchRequest<Patient>('Patient?_summary=count'))).total ?? 0)
    : patients;
  console.log(`embedded store bench: ${held} patients, file ${file}`);

  const orgs: (Organization & { id: string })[] = [];
  for (const [i, name] of process.argv.includes('--reuse') ? [] : CLINICS.entries()) {
    const { resource } = await store.create<Organization>({
      resourceType: 'Organization',
      identifier: [{ system: RESH, value: String(100000 + i) }],
      name: `Smerteklinikken, ${name}`,
    });
    orgs.push(resource as Organization & { id: string });
  }

  const pseudonyms: string[] = [];
  const patientIds: string[] = [];
  const reuse = process.argv.includes('--reuse');
  if (reuse) {
    // A file a previous run kept (--file … --keep): its cohort is read back instead of generated again.
    for (const p of (await store.search(parseSearchRequest<Patient>(`Patient?_count=1000`))).matches) {
      pseudonyms.push(p.identifier?.[0]?.value as string);
      patientIds.push(p.id as string);
    }
    orgs.splice(
      0,
      orgs.length,
      ...((await store.search(parseSearchRequest<Organization>('Organization?_count=100')))
        .matches as (Organization & { id: string })[]),
    );
  }
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  let writes = 0;
  // In bulk: 500 persons per SQLite transaction (each resource still written and indexed as a create is).
  const BATCH = 500;
  for (let done = 0; !reuse && done < patients; done += BATCH) {
    store.immediate(() => {
      for (let n = done; n < Math.min(done + BATCH, patients); n++) {
        const pseudonym = `1-${n.toString(16).padStart(8, '0')}${Math.floor(random() * 1e9).toString(16)}`;
        const { resource: patient } = store.createSync<Patient>({
          resourceType: 'Patient',
          identifier: [{ system: PSEUDONYM, value: pseudonym }],
          gender: pick(['female', 'male']),
          birthDate: String(1940 + Math.floor(random() * 65)),
        });
        const org = pick(orgs);
        const start = randomDate(2022, 3);
        store.createSync<EpisodeOfCare>({
          resourceType: 'EpisodeOfCare',
          status: 'finished',
          patient: { reference: `Patient/${patient.id}` },
          managingOrganization: { reference: `Organization/${org.id}` },
          period: { start, end: randomDate(Number(start.slice(0, 4)) + 1, 1) },
        });
        store.createSync(questionnaireResponse(patient.id as string, start));
        writes += 3;
        pseudonyms.push(pseudonym);
        patientIds.push(patient.id as string);
      }
    });
    if ((done + BATCH) % 10000 === 0) {
      console.log(`  ${done + BATCH} patients loaded`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  if (!reuse) {
    console.log(
      `load: ${writes} resources in ${seconds.toFixed(1)} s = ${(writes / seconds).toFixed(0)} inserts/s ` +
        `(${BATCH} persons per SQLite transaction; ${(writes / cpuSeconds).toFixed(0)} per CPU-second); ` +
        `file ${(statSync(file).size / 1e6).toFixed(0)} MB`,
    );
  }

  const queries: [string, () => string][] = [
    [
      'QR by questionnaire + authored quarter (_count=50)',
      () => {
        const y = 2022 + Math.floor(random() * 3);
        const m = pick(['01', '04', '07', '10']);
        const next = m === '10' ? `${y + 1}-01` : `${y}-${pad(Number(m) + 3)}`;
        return `QuestionnaireResponse?questionnaire=${BASELINE}&authored=ge${y}-${m}&authored=lt${next}&_count=50`;
      },
    ],
    [
      'EpisodeOfCare by organization (_count=50)',
      () => `EpisodeOfCare?organization=Organization/${pick(orgs).id}&_count=50`,
    ],
    [
      'EpisodeOfCare by organization + period year, _total=accurate',
      () =>
        `EpisodeOfCare?organization=Organization/${pick(orgs).id}&date=ge${2022 + Math.floor(random() * 3)}&_total=accurate`,
    ],
    ['Patient by identifier', () => `Patient?identifier=${PSEUDONYM}|${pick(pseudonyms)}`],
    [
      'QR by subject:Patient.identifier (chained)',
      () => `QuestionnaireResponse?subject:Patient.identifier=${PSEUDONYM}|${pick(pseudonyms)}`,
    ],
    [
      'EpisodeOfCare by organization.identifier (chained) + _include patient',
      () =>
        `EpisodeOfCare?organization.identifier=${RESH}|${100000 + Math.floor(random() * 5)}&_include=EpisodeOfCare:patient&_count=50`,
    ],
    [
      'QR count by questionnaire (_summary=count)',
      () => `QuestionnaireResponse?questionnaire=${BASELINE}&_summary=count`,
    ],
    [
      'Patient by birthdate range + gender, _sort=birthdate',
      () => `Patient?birthdate=ge1960&birthdate=lt1970&gender=female&_sort=birthdate&_count=50`,
    ],
  ];
  const runs = Number(arg('runs') ?? 50);
  console.log(
    `search latency over ${runs} runs each (ms; CPU time of this process; load average ${loadavg()[0].toFixed(1)}):`,
  );
  for (const [label, make] of queries) {
    if (process.argv.includes('--plans')) {
      console.log(`  ${label}: query plans (EXPLAIN QUERY PLAN)`);
      for (const plan of store.explainSearch(parseSearchRequest(make()))) {
        console.log(plan.replace(/^/gm, '      '));
      }
    }
    for (let i = 0; i < 3; i++) await store.search(parseSearchRequest(make())); // warm-up
    const times: number[] = [];
    const cpus: number[] = [];
    let matches = 0;
    for (let i = 0; i < runs; i++) {
      const request = parseSearchRequest(make());
      const c = process.cpuUsage();
      const t = performance.now();
      const result = await store.search(request);
      times.push(performance.now() - t);
      const used = process.cpuUsage(c);
      cpus.push((used.user + used.system) / 1000);
      matches += result.matches.length;
    }
    times.sort((a, b) => a - b);
    cpus.sort((a, b) => a - b);
    const f = (n: number) => n.toFixed(2).padStart(7);
    console.log(
      `  ${label.padEnd(68)} wall p50 ${f(percentile(times, 50))} p95 ${f(percentile(times, 95))}  ` +
        `cpu p50 ${f(percentile(cpus, 50))} p95 ${f(percentile(cpus, 95))}  (avg ${(matches / runs).toFixed(1)} matches)`,
    );
  }

  // Each erasure looks through the whole file for left-over bytes: minutes at 100,000 persons.
  const toErase = process.argv.includes('--no-erasure') ? 0 : Math.min(50, patients);
  const eraseTimes: number[] = [];
  for (let i = 0; i < toErase; i++) {
    const t = performance.now();
    const receipt = await store.erasePatientCompartment(patientIds[i * Math.floor(patients / toErase)]);
    eraseTimes.push(performance.now() - t);
    if (receipt.residual !== 0) {
      throw new Error('erasure left residual resources');
    }
  }
  eraseTimes.sort((a, b) => a - b);
  if (toErase > 0)
    console.log(
      `erasure (incl. WAL checkpoint TRUNCATE) over ${toErase} patients: p50 ${percentile(eraseTimes, 50).toFixed(1)} ms, ` +
        `p95 ${percentile(eraseTimes, 95).toFixed(1)} ms per patient`,
    );
  await store.close();
  if (dir && !process.argv.includes('--keep')) {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
