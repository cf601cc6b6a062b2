/**
 * Researcher search benchmark (not a test; issue 13): loads a synthetic cohort in bulk into a DATA_DIR's
 * embedded store (units, Questionnaires and an approval as the server holds them; every resource labelled
 * with its unit as the ingest pipeline labels it), starts the real server on it and times a researcher's
 * common searches over HTTP: QuestionnaireResponses by questionnaire and authored period, and episodes by
 * unit and period, each through the study view (project pseudonyms, projection, the period clamp).
 *
 *   npx tsx bench/research/run.ts [--persons 100000] [--runs 200] [--dir path] [--keep] [--reuse] [--plans]
 *
 * --reuse: search the store a run with --dir and --keep left; --plans: print the store's query plans.
 *
 * Only synthetic people: a Patient carries only a made-up registry pseudonym.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type { Organization, QuestionnaireResponse, ResearchStudy, Resource } from '@medplum/fhirtypes';
import { UNIT_LABEL_SYSTEM } from '../../src/auth/unitLabel';
import { issueDevToken } from '../../src/auth/devTokens';
import { loadConfig } from '../../src/config';
import { newServerId } from '../../src/identity/serverId';
import { createLogger } from '../../src/logging/logger';
import { createServer } from '../../src/server';
import { parseApproval, type Approval, type StudyResourceType } from '../../src/research/approval';
import { searchFilters } from '../../src/research/scope';
import { EmbeddedStore } from '../../src/store/embedded';
import { loadUnits, readUnits } from '../../src/units/units';
import { loadNorPainQuestionnaires, NORPAIN_QUESTIONNAIRE_URLS } from '../../src/validation/questionnaire';

const BASELINE = NORPAIN_QUESTIONNAIRE_URLS.baseline;
const FOLLOW_UP = NORPAIN_QUESTIONNAIRE_URLS.followUp12m;
const PSEUDONYM = 'https://norpain.no/fhir/NamingSystem/registry-pseudonym';
const EXT = 'https://norpain.no/fhir/StructureDefinition/';
const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
const STUDY = 'bench-study';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

let seed = 13;
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
const pad = (n: number): string => String(n).padStart(2, '0');
const date = (year: number): string =>
  `${year}-${pad(1 + Math.floor(random() * 12))}-${pad(1 + Math.floor(random() * 28))}`;
const labelled = <T extends Resource>(resource: T, unit: string): T => ({
  ...resource,
  meta: { security: [{ system: UNIT_LABEL_SYSTEM, code: unit }] },
});

function response(url: string, patient: string, authored: string, unit: string): QuestionnaireResponse {
  const score = () => [{ valueInteger: Math.floor(random() * 11) }];
  return labelled(
    {
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      questionnaire: `${url}|1.0.0`,
      subject: { reference: `Patient/${patient}` },
      authored: `${authored}T10:00:00+01:00`,
      item: [
        {
          linkId: 'smerte',
          item: [
            { linkId: 'nrs-verst', answer: score() },
            { linkId: 'nrs-minst', answer: score() },
            { linkId: 'nrs-gjennomsnitt', answer: score() },
          ],
        },
      ],
    },
    unit,
  );
}

function approval(units: readonly string[]): ResearchStudy {
  const variables = [
    'Patient.gender',
    'EpisodeOfCare.status',
    'EpisodeOfCare.period',
    'EpisodeOfCare.patient',
    'EpisodeOfCare.managingOrganization',
    'QuestionnaireResponse.subject',
    'QuestionnaireResponse.authored',
    `${BASELINE}#nrs-gjennomsnitt`,
    `${FOLLOW_UP}#nrs-gjennomsnitt`,
  ];
  return {
    resourceType: 'ResearchStudy',
    extension: [
      ...variables.map((v) => ({ url: `${EXT}approved-variable`, valueString: v })),
      { url: `${EXT}date-precision`, valueCode: 'month' },
      { url: `${EXT}age-band`, valuePositiveInt: 5 },
      ...units.map((unit) => ({ url: `${EXT}covered-unit`, valueIdentifier: { system: RESH, value: unit } })),
    ],
    identifier: [{ system: 'https://norpain.no/fhir/NamingSystem/research-approval', value: 'bench' }],
    title: 'Benchmark',
    status: 'active',
    period: { start: '2022-01-01', end: '2030-12-31' },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function load(dir: string, persons: number): Promise<{ orgs: Map<string, string>; units: string[] }> {
  const store = EmbeddedStore.open(EmbeddedStore.defaultFile(dir));
  const units = readUnits().map((u) => u.resh);
  await loadUnits(store, readUnits());
  await loadNorPainQuestionnaires(store);
  const orgs = new Map(
    (await store.search(parseSearchRequest<Organization>('Organization?_count=100'))).matches.map((o) => [
      o.identifier?.[0]?.value as string,
      o.id as string,
    ]),
  );
  // The study covers three of the five units.
  store.immediate(() => store.createSync(approval(units.slice(0, 3)), undefined, STUDY));
  const started = performance.now();
  let resources = 0;
  const BATCH = 500;
  for (let done = 0; done < persons; done += BATCH) {
    store.immediate(() => {
      for (let n = done; n < Math.min(done + BATCH, persons); n++) {
        const unit = pick(units);
        const patient = newServerId();
        const year = 2021 + Math.floor(random() * 5);
        const start = date(year);
        const end = date(year + 1);
        const rows: Resource[] = [
          labelled(
            {
              resourceType: 'Patient',
              identifier: [{ system: PSEUDONYM, value: `1-bench${n}` }],
              gender: pick(['female', 'male'] as const),
              birthDate: `${1940 + Math.floor(random() * 60)}-${pad(1 + Math.floor(random() * 12))}`,
            },
            unit,
          ),
          labelled(
            {
              resourceType: 'EpisodeOfCare',
              status: 'finished',
              patient: { reference: `Patient/${patient}` },
              managingOrganization: { reference: `Organization/${orgs.get(unit)}` },
              period: { start, end },
            },
            unit,
          ),
          labelled(
            {
              resourceType: 'Condition',
              code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] },
              subject: { reference: `Patient/${patient}` },
              recordedDate: start,
            },
            unit,
          ),
          response(BASELINE, patient, start, unit),
          response(FOLLOW_UP, patient, date(year + 2), unit),
        ];
        rows.forEach((r, i) => store.createSync(r, undefined, i === 0 ? patient : undefined));
        resources += rows.length;
      }
    });
    if ((done + BATCH) % 20000 === 0) console.log(`  ${done + BATCH} persons loaded`);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`load: ${persons} persons, ${resources} resources in ${seconds.toFixed(0)} s`);
  await store.close();
  return { orgs, units };
}

async function main(): Promise<void> {
  const persons = Number(arg('persons') ?? 100000);
  const runs = Number(arg('runs') ?? 200);
  const dir = arg('dir') ?? mkdtempSync(join(tmpdir(), 'norpain-research-bench-'));
  console.log(`researcher search bench: ${persons} persons, DATA_DIR ${dir}`);
  const { orgs, units } = process.argv.includes('--reuse')
    ? { orgs: new Map<string, string>(), units: readUnits().map((u) => u.resh) }
    : await load(dir, persons);
  const config = loadConfig({ NODE_ENV: 'development', DATA_DIR: dir, LOG_LEVEL: 'silent' });
  const server = await createServer(config, { logger: createLogger({ level: 'silent' }), identityEnv: {} });
  const listening = await server.listen(0, '127.0.0.1');
  const base = `${listening.url}/fhir`;
  const token = await issueDevToken(config, { role: 'researcher', study: STUDY });
  // Wall time and this process's CPU time (server and client both run here): on a shared machine the CPU
  // time is what the request itself costs.
  const get = async (path: string): Promise<{ ms: number; cpu: number; matches: number }> => {
    const c = process.cpuUsage();
    const t = performance.now();
    const response = await fetch(`${base}/${path}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { entry?: unknown[] };
    const ms = performance.now() - t;
    const used = process.cpuUsage(c);
    if (response.status !== 200) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
    return { ms, cpu: (used.user + used.system) / 1000, matches: body.entry?.length ?? 0 };
  };
  if (orgs.size === 0) {
    const found = (await server.store.search(parseSearchRequest<Organization>('Organization?_count=100')))
      .matches;
    for (const o of found) orgs.set(o.identifier?.[0]?.value as string, o.id as string);
  }
  const quarter = (): string => {
    const y = 2022 + Math.floor(random() * 4);
    const m = pick([1, 4, 7, 10]);
    return `ge${y}-${pad(m)}&authored=lt${m === 10 ? `${y + 1}-01` : `${y}-${pad(m + 3)}`}`;
  };
  const covered = units.slice(0, 3);
  const queries: [string, () => string][] = [
    [
      'QuestionnaireResponse by questionnaire + authored quarter (_count=50)',
      () =>
        `QuestionnaireResponse?questionnaire=${pick([BASELINE, FOLLOW_UP])}&authored=${quarter()}&_count=50`,
    ],
    [
      'EpisodeOfCare by unit + period year (_count=50)',
      () => {
        const y = 2022 + Math.floor(random() * 4);
        return `EpisodeOfCare?organization=Organization/${orgs.get(pick(covered))}&date=ge${y}-01&date=le${y}-12&_count=50`;
      },
    ],
    [
      'EpisodeOfCare by unit + period year, _total=accurate (_count=50)',
      () => {
        const y = 2022 + Math.floor(random() * 4);
        return `EpisodeOfCare?organization=Organization/${orgs.get(pick(covered))}&date=ge${y}-01&date=le${y}-12&_count=50&_total=accurate`;
      },
    ],
  ];
  console.log(
    `researcher searches over HTTP, ${runs} runs each after 10 warm-up runs (ms; load average ${os.loadavg()[0].toFixed(1)}):`,
  );
  if (process.argv.includes('--plans')) {
    // The store searches the study view makes for these (its scope filters with the researcher's own),
    // planned on a second connection to the same file.
    const planner = EmbeddedStore.open(EmbeddedStore.defaultFile(dir));
    const approval = parseApproval(await planner.read<ResearchStudy>('ResearchStudy', STUDY)) as Approval;
    for (const [label, make] of queries) {
      const request = parseSearchRequest(make());
      const type = request.resourceType as StudyResourceType;
      console.log(`  ${label}: the store's query plans (EXPLAIN QUERY PLAN)`);
      const plans = planner.explainSearch({
        ...request,
        filters: searchFilters(approval, type, request.filters ?? []),
      });
      for (const plan of plans) console.log(plan.replace(/^/gm, '      '));
    }
    // The store's own share of each search: the same store searches, timed without HTTP and the view.
    for (const [label, make] of queries) {
      const cpus: number[] = [];
      for (let i = 0; i < runs + 10; i++) {
        const request = parseSearchRequest(make());
        const type = request.resourceType as StudyResourceType;
        const c = process.cpuUsage();
        await planner.search({ ...request, filters: searchFilters(approval, type, request.filters ?? []) });
        const used = process.cpuUsage(c);
        if (i >= 10) cpus.push((used.user + used.system) / 1000);
      }
      cpus.sort((a, b) => a - b);
      console.log(
        `  ${label.padEnd(68)} store alone: cpu p50 ${percentile(cpus, 50).toFixed(1)} p95 ${percentile(cpus, 95).toFixed(1)}`,
      );
    }
    await planner.close();
  }
  for (const [label, make] of queries) {
    for (let i = 0; i < 10; i++) await get(make());
    const times: number[] = [];
    const cpus: number[] = [];
    let matches = 0;
    for (let i = 0; i < runs; i++) {
      const { ms, cpu, matches: n } = await get(make());
      times.push(ms);
      cpus.push(cpu);
      matches += n;
    }
    times.sort((a, b) => a - b);
    cpus.sort((a, b) => a - b);
    const f = (n: number) => n.toFixed(1).padStart(6);
    console.log(
      `  ${label.padEnd(68)} wall p50 ${f(percentile(times, 50))} p95 ${f(percentile(times, 95))}  ` +
        `cpu p50 ${f(percentile(cpus, 50))} p95 ${f(percentile(cpus, 95))}  (avg ${(matches / runs).toFixed(1)} entries)`,
    );
  }
  await server.close();
  if (!arg('dir') && !process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
