import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { FNR_SYSTEM, people } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import * as fixtures from './fixtures';

const { call, idsIn, observation, questionnaire, response, submitPerson, UNIT_A } = fixtures;
type PersonData = fixtures.PersonData;

/**
 * The portal's view is the person's own data (issue 11, DESIGN §5): resources whose subject or patient
 * is the person, not resources that merely mention them (here: an Observation about Q that names P as
 * performer); and a response the portal sends can only be given by the person (author and source).
 */
let server: TestServer;
let admin: string;
let clinic: string;
let P: PersonData;
let Q: PersonData;
let mentionsP: string; // an Observation about Q with P as performer

beforeAll(async () => {
  server = await startTestServer();
  const [p, q] = people(11031, 2);
  admin = await server.token('registry-admin');
  clinic = await server.token('clinic', { org: UNIT_A });
  expect((await call(server, admin, 'POST', 'Questionnaire', questionnaire)).status).toBe(201);
  P = await submitPerson(server, clinic, p, UNIT_A);
  Q = await submitPerson(server, clinic, q, UNIT_A);
  const created = await call(server, clinic, 'POST', 'Observation', {
    ...observation({ reference: `Patient/${Q.patient}` }, 'about Q'),
    performer: [{ reference: `Patient/${P.patient}` }],
  });
  expect(created.status).toBe(201);
  mentionsP = (created.body as Resource).id as string;
}, 60_000);

afterAll(async () => {
  await server.stop();
});

test('a resource that only mentions the person (performer) is not theirs: read 404, not in search or $everything', async () => {
  const portalP = await server.token('portal', { pid: P.fnr });
  const missing = await call(server, portalP, 'GET', 'Observation/does-not-exist');
  const read = await call(server, portalP, 'GET', `Observation/${mentionsP}`);
  expect(`${read.status} ${read.text}`).toBe(`${missing.status} ${missing.text}`);
  expect((await call(server, portalP, 'GET', `Observation/${mentionsP}/_history/1`)).status).toBe(404);
  const search = await call<Bundle>(server, portalP, 'GET', 'Observation?_count=100');
  expect(idsIn(search.body, 'Observation')).toEqual([`Observation/${P.observation}`]);
  const everything = await call<Bundle>(server, portalP, 'GET', 'Patient/$everything');
  expect(idsIn(everything.body)).toContain(`Observation/${P.observation}`);
  expect(idsIn(everything.body)).not.toContain(`Observation/${mentionsP}`);
  // Q, whose record it is, sees it.
  const portalQ = await server.token('portal', { pid: Q.fnr });
  expect((await call(server, portalQ, 'GET', `Observation/${mentionsP}`)).status).toBe(200);
});

describe('author and source of a portal response', () => {
  const own = () => ({ identifier: { system: FNR_SYSTEM, value: P.fnr } });

  async function responsesOfP(): Promise<number> {
    const found = await call<Bundle>(
      server,
      admin,
      'GET',
      `QuestionnaireResponse?subject=Patient/${P.patient}`,
    );
    return found.body.entry?.length ?? 0;
  }

  test.each([
    [
      'author: another person by national id',
      () => ({ author: { identifier: { system: FNR_SYSTEM, value: Q.fnr } } }),
    ],
    ['author: another Patient', () => ({ author: { reference: `Patient/${Q.patient}` } })],
    ['author: a Practitioner', () => ({ author: { reference: 'Practitioner/some-doctor' } })],
    ['source: another Patient', () => ({ source: { reference: `Patient/${Q.patient}` } })],
    [
      'source: another person, conditionally',
      () => ({ source: { reference: `Patient?identifier=${FNR_SYSTEM}|${Q.fnr}` } }),
    ],
  ])('%s is refused with 403, and nothing is stored', async (_name, extra) => {
    const portal = await server.token('portal', { pid: P.fnr });
    const before = await responsesOfP();
    const reply = await call<OperationOutcome>(server, portal, 'POST', 'QuestionnaireResponse', {
      ...response(own()),
      ...extra(),
    });
    expect(reply.status).toBe(403);
    expect(reply.body.issue[0].details?.text).toContain('can only be given by the person the token acts for');
    expect(reply.text).not.toContain(Q.fnr);
    expect(await responsesOfP()).toBe(before);
  });

  test.each([
    ['no author or source', () => ({})],
    [
      'author: the person by national id',
      () => ({ author: { identifier: { system: FNR_SYSTEM, value: P.fnr } } }),
    ],
    [
      'author and source: the person’s own Patient',
      () => ({
        author: { reference: `Patient/${P.patient}` },
        source: { reference: `Patient/${P.patient}` },
      }),
    ],
  ])('%s is accepted', async (_name, extra) => {
    const portal = await server.token('portal', { pid: P.fnr });
    const reply = await call(server, portal, 'POST', 'QuestionnaireResponse', {
      ...response(own()),
      ...extra(),
    });
    expect({ status: reply.status, text: reply.status === 201 ? '' : reply.text }).toEqual({
      status: 201,
      text: '',
    });
  });

  test('a clinic may still name its practitioner as author', async () => {
    const reply = await call(server, clinic, 'POST', 'QuestionnaireResponse', {
      ...response({ reference: `Patient/${P.patient}` }),
      author: { reference: 'Practitioner/some-doctor' },
    });
    expect(reply.status).toBe(201);
  });
});
