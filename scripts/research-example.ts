/**
 * The example of docs/research.md, made by the real server so that it is true: an approval, a researcher
 * token's claims, and ONE synthetic person as registry staff hold them and as two studies see them (two
 * unrelated sets of ids, dates cut to each study's precision, an age band instead of the birth date).
 *
 *   npx tsx scripts/research-example.ts > example.json
 *
 * It runs the server in-process on a temporary DATA_DIR (embedded store, development keys, so the ids
 * differ from run to run), sends the person as a clinic does, and exits with 1 if what a study sees
 * breaks a rule of the view (a registry id, a birth date, a date finer than approved, ids shared).
 */
import type { Bundle, ResearchStudy, Resource } from '@medplum/fhirtypes';
import { decodeJwt } from 'jose';
import { call, ok } from '../test/consent/fixtures';
import { startTestServer } from '../test/helpers/testServer';
import { approval, putApproval } from '../test/research/fixtures';
import { BASELINE, submitPeople } from '../test/statistics/registryData';

const STUDY_VARIABLES = [
  'Patient.gender',
  'EpisodeOfCare.patient',
  'EpisodeOfCare.period',
  'EpisodeOfCare.managingOrganization',
  'QuestionnaireResponse.subject',
  'QuestionnaireResponse.authored',
  `${BASELINE}#nrs-gjennomsnitt`,
];

async function main(): Promise<void> {
  const server = await startTestServer({ LOG_LEVEL: 'warn' });
  try {
    const staff = await server.token('registry-admin');
    const studies: ResearchStudy[] = [
      approval({
        id: 'smerte-2024',
        variables: STUDY_VARIABLES,
        precision: 'month',
        ageBand: 5,
        units: ['999001', '999002'],
        period: { start: '2024-01-01', end: '2030-12-31' },
      }),
      approval({
        id: 'sovn-2024',
        variables: STUDY_VARIABLES.filter((v) => v !== 'EpisodeOfCare.managingOrganization'),
        precision: 'year',
        ageBand: 10,
        units: ['999001'],
        period: { start: '2024-01-01', end: '2030-12-31' },
      }),
    ];
    for (const study of studies) ok(await putApproval(server, staff, study), 201);
    const [patientId] = await submitPeople(server, [
      {
        unit: '999001',
        gender: 'female',
        birthDate: '1971-06-15',
        referral: '2024-02-05',
        decision: { granted: true, date: '2024-02-20', deadline: '2024-06-01' },
        start: '2024-03-10',
        baseline: { nrs: [8, 4, 6, 7] },
      },
    ]);
    const everything = `_revinclude=EpisodeOfCare:patient&_revinclude=QuestionnaireResponse:subject`;
    const stored = ok(
      await call<Bundle>(server, staff, 'GET', `Patient?_id=${patientId}&${everything}`),
      200,
    );
    const seen: Record<string, Resource[]> = {};
    let token: Record<string, unknown> = {};
    for (const study of studies) {
      const researcher = await server.token('researcher', {
        study: study.id,
        clientId: `forsker-${study.id}`,
      });
      token = decodeJwt(researcher);
      const bundle = ok(await call<Bundle>(server, researcher, 'GET', `Patient?${everything}`), 200);
      seen[study.id as string] = (bundle.entry ?? []).map((e) => e.resource as Resource);
    }
    check(seen, stored, studies);
    const registry = (stored.entry ?? []).map((e) => e.resource as Resource);
    process.stdout.write(
      `${JSON.stringify(
        {
          approval: studies[0],
          researcherToken: token,
          asRegistryStaffHoldIt: registry.map(trimmed),
          asStudiesSeeIt: seen,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await server.stop();
  }
}

/** The stored resources without what makes them long to read (every answer of the baseline form). */
function trimmed(resource: Resource): Resource {
  if (resource.resourceType !== 'QuestionnaireResponse') return resource;
  const pain = resource.item?.find((i) => i.linkId === 'smerte');
  return { ...resource, item: pain ? [pain] : [] };
}

/** Exits with 1 when what a study sees breaks a rule of the view (so the example never shows one that does). */
function check(seen: Record<string, Resource[]>, stored: Bundle, studies: ResearchStudy[]): void {
  const registryIds = (stored.entry ?? []).map((e) => (e.resource as Resource).id as string);
  const idSets = Object.values(seen).map((resources) => new Set(resources.map((r) => r.id as string)));
  const problems: string[] = [];
  for (const study of studies) {
    const resources = seen[study.id as string];
    const text = JSON.stringify(resources);
    if (resources.length !== 3) problems.push(`${study.id}: ${resources.length} resources, not 3`);
    if (registryIds.some((id) => text.includes(id))) problems.push(`${study.id}: a registry id is shown`);
    if (text.includes('birthDate')) problems.push(`${study.id}: a birth date is shown`);
    const finest = study.extension?.find((e) => e.url.endsWith('date-precision'))?.valueCode;
    const tooFine = finest === 'year' ? /"\d{4}-\d{2}/ : /"\d{4}-\d{2}-\d{2}/;
    if (tooFine.test(text)) problems.push(`${study.id}: a date finer than the ${finest}`);
  }
  if ([...idSets[0]].some((id) => idSets[1].has(id))) problems.push('the two studies share an id');
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    process.exit(1);
  }
}

void main();
