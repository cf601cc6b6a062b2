import fs from 'node:fs';
import path from 'node:path';
import type { OperationOutcome, ResearchStudy } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { approval, call, ok, putApproval, questionnaire, RUN } from './fixtures';

/** Registry staff write approvals; their variables must come from the data dictionary (issue 13). */
let server: TestServer;
let staff: string;
const q = questionnaire();

beforeAll(async () => {
  server = await startTestServer();
  staff = await server.token('registry-admin');
  ok(await call(server, staff, 'PUT', `Questionnaire/${q.id}`, q), 201);
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

test('the profile example is an approval staff can write', async () => {
  const file = path.join(
    __dirname,
    '../../profiles/fsh-generated/resources/ResearchStudy-norpain-researchstudy-approval-example.json',
  );
  const example = JSON.parse(fs.readFileSync(file, 'utf8')) as ResearchStudy;
  const study = { ...example, id: `example-${RUN}` };
  expect((await putApproval(server, staff, study)).status).toBe(201);
});

test('a careless approval is refused with 422 naming each variable that cannot be approved, and nothing is stored', async () => {
  const refused = [
    'QuestionnaireResponse.identifier',
    'EpisodeOfCare.identifier',
    `${q.url}#kommentar`, // a free-text question
    `${q.url}#no-such-item`,
    'https://example.org/Questionnaire/other#q1',
    'Patient.birthDate',
    'Condition.note',
    'Practitioner.name',
    'QuestionnaireResponse.item.answer',
    'free text please',
  ];
  const careless = approval({
    id: `careless-${RUN}`,
    variables: ['EpisodeOfCare.period', `${q.url}#smerte`, ...refused],
  });
  const reply = await putApproval(server, staff, careless);
  expect(reply.status).toBe(422);
  const outcome = reply.body as OperationOutcome;
  const named = (outcome.issue ?? []).map((i) => i.details?.text ?? '');
  for (const variable of refused) {
    expect(named.filter((text) => text.includes(`'${variable}'`))).toHaveLength(1);
  }
  expect(named).toHaveLength(refused.length);
  expect(named.find((t) => t.includes('EpisodeOfCare.identifier'))).toContain(
    'identifiers can never be approved',
  );
  expect(named.find((t) => t.includes('#kommentar'))).toContain('free text');
  expect(outcome.issue?.[0].expression?.[0]).toMatch(/^ResearchStudy\.extension\[\d+\]\.valueString$/);
  expect((await call(server, staff, 'GET', `ResearchStudy/${careless.id}`)).status).toBe(404);
});

test('researchers never create or change studies, nor write data', async () => {
  const researcher = await server.token('researcher', { study: `example-${RUN}` });
  const study = approval({ id: `own-${RUN}`, variables: ['EpisodeOfCare.period'] });
  expect((await putApproval(server, researcher, study)).status).toBe(403);
  expect((await call(server, researcher, 'POST', 'ResearchStudy', study)).status).toBe(403);
  expect((await call(server, staff, 'GET', `ResearchStudy/${study.id}`)).status).toBe(404);
  const patient = { resourceType: 'Patient', gender: 'female' };
  expect((await call(server, researcher, 'POST', 'Patient', patient)).status).toBe(403);
});
