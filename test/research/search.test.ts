import type { AuditEvent, Bundle, EpisodeOfCare, Patient, Resource } from '@medplum/fhirtypes';
import { people, reservation } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import {
  approval,
  call,
  ok,
  projectId,
  putApproval,
  questionnaire,
  RUN,
  submitPerson,
  UNIT_A,
  UNIT_B,
  type Person,
} from './fixtures';

/**
 * A researcher's FHIR API (issue 13): read, vread, history and search inside the study view, with
 * project pseudonyms that mean nothing outside the study, and no way to probe what the view hides.
 */
let server: TestServer;
let staff: string;
let tokenA: string;
let tokenB: string;
let alice: Person; // at unit A (covered), also at unit B
let bob: Person; // at unit B only
let carl: Person; // at unit A, reserves himself
let dave: Person; // at unit A since before the period: his answer then is outside it
let aliceEpisodeAtB: string;
const q = questionnaire();
const variables = [
  'Patient.gender',
  'EpisodeOfCare.status',
  'EpisodeOfCare.period',
  'EpisodeOfCare.patient',
  'EpisodeOfCare.managingOrganization',
  'QuestionnaireResponse.subject',
  'QuestionnaireResponse.authored',
  `${q.url}#smerte`,
];
const studyA = approval({ id: `study-a-${RUN}`, variables, precision: 'month', ageBand: 5 });
const studyB = approval({ id: `study-b-${RUN}`, variables, precision: 'year', ageBand: 10 });

beforeAll(async () => {
  server = await startTestServer();
  staff = await server.token('registry-admin');
  ok(await call(server, staff, 'PUT', `Questionnaire/${q.id}`, q), 201);
  ok(await putApproval(server, staff, studyA), 201);
  ok(await putApproval(server, staff, studyB), 201);
  const clinicA = await server.token('clinic', { org: UNIT_A });
  const clinicB = await server.token('clinic', { org: UNIT_B });
  const [a, b, c, d] = people(1313, 4);
  alice = await submitPerson(server, clinicA, a, UNIT_A);
  bob = await submitPerson(server, clinicB, b, UNIT_B);
  carl = await submitPerson(server, clinicA, c, UNIT_A);
  dave = await submitPerson(server, clinicA, d, UNIT_A, '2023-05-02');
  // Alice is also treated at unit B (her Patient then carries both units).
  const atB = await submitPerson(server, clinicB, a, UNIT_B, '2025-02-03');
  expect(atB.patient).toBe(alice.patient);
  aliceEpisodeAtB = atB.episode;
  tokenA = await server.token('researcher', { study: studyA.id, clientId: `researcher-${RUN}` });
  tokenB = await server.token('researcher', { study: studyB.id });
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

const idIn = (study: { id?: string }, type: string, registryId: string) =>
  projectId(server, study.id as string, type, registryId);
const entries = (bundle: Bundle) => (bundle.entry ?? []).map((e) => e.resource as Resource);

test('read, vread and history by project id; never by registry id', async () => {
  const id = idIn(studyA, 'Patient', alice.patient);
  const patient = ok(await call<Patient>(server, tokenA, 'GET', `Patient/${id}`), 200);
  expect(patient).toMatchObject({ resourceType: 'Patient', id, gender: 'female' });
  expect(patient.birthDate).toBeUndefined();
  const first = ok(await call<Patient>(server, tokenA, 'GET', `Patient/${id}/_history/1`), 200);
  expect(first).toMatchObject({ id, gender: 'female' });
  const history = ok(await call<Bundle>(server, tokenA, 'GET', `Patient/${id}/_history`), 200);
  expect(entries(history).every((r) => r.id === id)).toBe(true);

  const guessed = await call(server, tokenA, 'GET', `Patient/${alice.patient}`);
  const nothing = await call(server, tokenA, 'GET', `Patient/${'a'.repeat(32)}`);
  expect(guessed.status).toBe(404);
  expect(guessed.text).toBe(nothing.text); // the same answer as for an id of nothing
  expect((await call(server, tokenA, 'GET', `EpisodeOfCare/${alice.episode}/_history`)).status).toBe(404);
});

test('the same person has unrelated ids in two studies, and one study’s ids mean nothing in the other', async () => {
  const inA = idIn(studyA, 'Patient', alice.patient);
  const inB = idIn(studyB, 'Patient', alice.patient);
  expect(inA).not.toBe(inB);
  expect((await call(server, tokenB, 'GET', `Patient/${inA}`)).status).toBe(404);
  expect((await call(server, tokenA, 'GET', `Patient/${inB}`)).status).toBe(404);
  const searchedAcross = ok(
    await call<Bundle>(server, tokenB, 'GET', `EpisodeOfCare?patient=Patient/${inA}`),
    200,
  );
  expect(searchedAcross.entry ?? []).toEqual([]);

  // Everything study A and study B are shown of her: no value in common that could link them.
  const shown = async (token: string, patient: string) => {
    const bundle = ok(
      await call<Bundle>(
        server,
        token,
        'GET',
        `Patient?_id=${patient}&_revinclude=EpisodeOfCare:patient&_revinclude=QuestionnaireResponse:subject`,
      ),
      200,
    );
    return entries(bundle);
  };
  const a = await shown(tokenA, inA);
  const b = await shown(tokenB, inB);
  expect(a.map((r) => r.resourceType).sort()).toEqual(['EpisodeOfCare', 'Patient', 'QuestionnaireResponse']);
  expect(b.map((r) => r.resourceType).sort()).toEqual(['EpisodeOfCare', 'Patient', 'QuestionnaireResponse']);
  const values = (resources: Resource[]) => {
    const out = new Set<string>();
    const walk = (v: unknown): void => {
      if (typeof v === 'string') out.add(v);
      else if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
    };
    walk(resources);
    return out;
  };
  const linking = [...values(a)].filter((v) => values(b).has(v) && /[a-z]{20,}|\d{4}-\d{2}/.test(v));
  expect(linking.filter((v) => !v.startsWith('https://') && !v.startsWith('http://'))).toEqual([]);
  const episodeB = b.find((r) => r.resourceType === 'EpisodeOfCare') as EpisodeOfCare;
  expect(episodeB.period?.start).toBe('2024'); // study B: years only
  const episodeA = a.find((r) => r.resourceType === 'EpisodeOfCare') as EpisodeOfCare;
  expect(episodeA.period?.start).toBe('2024-03');
});

test('_include and _revinclude stay inside the view: her episode at an uncovered unit is left out', async () => {
  const patient = idIn(studyA, 'Patient', alice.patient);
  const bundle = ok(
    await call<Bundle>(server, tokenA, 'GET', `Patient?_id=${patient}&_revinclude=EpisodeOfCare:patient`),
    200,
  );
  const episodes = entries(bundle).filter((r) => r.resourceType === 'EpisodeOfCare');
  expect(episodes.map((e) => e.id)).toEqual([idIn(studyA, 'EpisodeOfCare', alice.episode)]);
  expect(JSON.stringify(bundle)).not.toContain(idIn(studyA, 'EpisodeOfCare', aliceEpisodeAtB));
  expect(
    (await call(server, tokenA, 'GET', `EpisodeOfCare/${idIn(studyA, 'EpisodeOfCare', aliceEpisodeAtB)}`))
      .status,
  ).toBe(404);
  // Bob has data only at the uncovered unit: he is not in the view at all.
  expect((await call(server, tokenA, 'GET', `Patient/${idIn(studyA, 'Patient', bob.patient)}`)).status).toBe(
    404,
  );
});

test('search results use project ids throughout, with paging links that work', async () => {
  const bundle = ok(
    await call<Bundle>(
      server,
      tokenA,
      'GET',
      `QuestionnaireResponse?questionnaire=${q.url}&_count=1&_total=accurate`,
    ),
    200,
  );
  expect(bundle.total).toBe(2); // Alice and Carl answered at the covered unit
  const [first] = entries(bundle);
  expect(first.id).toMatch(/^[a-p]{32}$/);
  expect(bundle.entry?.[0].fullUrl).toBe(`${server.baseUrl}/QuestionnaireResponse/${first.id}`);
  const next = bundle.link?.find((l) => l.relation === 'next')?.url as string;
  const second = ok(await call<Bundle>(server, tokenA, 'GET', next.slice(server.baseUrl.length + 1)), 200);
  const [other] = entries(second);
  expect(other.id).not.toBe(first.id);
  expect(new Set([first.id, other.id])).toEqual(
    new Set([alice.response, carl.response].map((id) => idIn(studyA, 'QuestionnaireResponse', id))),
  );
});

test('searching by an unapproved element, finer than the approved precision, or by chains is refused', async () => {
  const refused = [
    'QuestionnaireResponse?identifier=x|y', // identifiers are never approved
    'Patient?birthdate=1980', // ages are given in bands only
    'Condition?code=M79.7', // Condition.code is not approved in this study
    'EpisodeOfCare?date=ge2024-03-04', // the study sees months
    'EpisodeOfCare?_lastUpdated=ge2024-03-04T10:00:00Z',
    'EpisodeOfCare?_security=https://norpain.no/fhir/CodeSystem/unit|999002',
    'EpisodeOfCare?patient.gender=female',
    'EpisodeOfCare?_sort=identifier',
    'EpisodeOfCare?_include=EpisodeOfCare:condition',
  ];
  for (const query of refused) {
    const reply = await call(server, tokenA, 'GET', query);
    expect([query, reply.status]).toEqual([query, 403]);
    expect(reply.text).toContain('OperationOutcome');
  }
  // A Questionnaire the study has no approved item of: nothing, as for one nobody answered.
  const unapproved = ok(
    await call<Bundle>(
      server,
      tokenA,
      'GET',
      'QuestionnaireResponse?questionnaire=https://norpain.no/fhir/Questionnaire/norpain-baseline',
    ),
    200,
  );
  expect(unapproved.entry ?? []).toEqual([]);
  const allowed = ok(
    await call<Bundle>(server, tokenA, 'GET', `EpisodeOfCare?date=ge2024-03&status=active&_count=1`),
    200,
  );
  expect(allowed.resourceType).toBe('Bundle');
});

test('data outside the approval period stay out, whatever dates the researcher asks for', async () => {
  const patient = idIn(studyA, 'Patient', dave.patient);
  // His episode is still open, so it overlaps the period; his answer was given before it.
  const episodes = ok(await call<Bundle>(server, tokenA, 'GET', `EpisodeOfCare?patient=${patient}`), 200);
  expect(entries(episodes).map((r) => r.id)).toEqual([idIn(studyA, 'EpisodeOfCare', dave.episode)]);
  for (const query of [
    '',
    '&authored=ge2023-01',
    '&authored=ge2023-01&authored=le2031-01',
    '&authored=2023-05',
  ]) {
    const answers = ok(
      await call<Bundle>(server, tokenA, 'GET', `QuestionnaireResponse?subject=Patient/${patient}${query}`),
      200,
    );
    expect([query, answers.entry ?? []]).toEqual([query, []]);
  }
  const alices = ok(
    await call<Bundle>(
      server,
      tokenA,
      'GET',
      `QuestionnaireResponse?subject=Patient/${idIn(studyA, 'Patient', alice.patient)}&authored=ge2023-01&authored=le2031-01`,
    ),
    200,
  );
  expect(entries(alices).map((r) => r.id)).toEqual([idIn(studyA, 'QuestionnaireResponse', alice.response)]);
});

test('a person who reserves is gone from the view', async () => {
  const id = idIn(studyA, 'Patient', carl.patient);
  ok(await call(server, tokenA, 'GET', `Patient/${id}`), 200);
  const [, , fnr] = people(1313, 3);
  const reserved = await call(server, staff, 'POST', 'Consent', reservation(fnr, { channel: 'letter' }));
  expect(reserved.status).toBe(201);
  expect((await call(server, tokenA, 'GET', `Patient/${id}`)).status).toBe(404);
  const responses = ok(
    await call<Bundle>(server, tokenA, 'GET', `QuestionnaireResponse?subject=Patient/${id}`),
    200,
  );
  expect(responses.entry ?? []).toEqual([]);
});

test('researchers’ reads are audited under their study', async () => {
  const events = ok(
    await call<Bundle>(server, staff, 'GET', `AuditEvent?agent:identifier=researcher-${RUN}`),
    200,
  );
  const audited = entries(events) as AuditEvent[];
  expect(audited.length).toBeGreaterThan(0);
  for (const event of audited) {
    expect(event.agent?.[0].policy).toEqual([`ResearchStudy/${studyA.id}`]);
  }
});
