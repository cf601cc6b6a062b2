import type { Bundle, OperationOutcome, Procedure } from '@medplum/fhirtypes';
import { DNR_SYSTEM, FNR_SYSTEM, people } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import * as fixtures from './fixtures';

const { call, idsIn, questionnaire, response, submitPerson, UNIT_A } = fixtures;
type PersonData = fixtures.PersonData;

/**
 * The portal's view is the person's own data (issue 11, DESIGN §5): resources whose subject or patient
 * is the person, not resources that merely mention them (here: a Procedure about Q that names P as
 * performer); and a response the portal sends can only be given by the person (author and source).
 */
let server: TestServer;
let admin: string;
let clinic: string;
let P: PersonData;
let Q: PersonData;
let ownProcedure: string; // a Procedure about P
let mentionsP: string; // a Procedure about Q with P as performer

/** A treatment (NCSP QXGX99) about `subject`. */
function procedure(subject: string): Procedure {
  return {
    resourceType: 'Procedure',
    status: 'completed',
    code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7275', code: 'QXGX99' }] },
    subject: { reference: subject },
  };
}

beforeAll(async () => {
  server = await startTestServer();
  const [p, q] = people(11031, 2);
  admin = await server.token('registry-admin');
  clinic = await server.token('clinic', { org: UNIT_A });
  expect((await call(server, admin, 'POST', 'Questionnaire', questionnaire)).status).toBe(201);
  P = await submitPerson(server, clinic, p, UNIT_A);
  Q = await submitPerson(server, clinic, q, UNIT_A);
  const own = await call<Procedure>(server, clinic, 'POST', 'Procedure', procedure(`Patient/${P.patient}`));
  expect(own.status).toBe(201);
  ownProcedure = own.body.id as string;
  // The data dictionary does not store Procedure.performer, so a record naming P as performer can only be
  // one stored before the allow-list: written past the door, straight into the store, as such a record
  // is. The view must keep it out of P's portal all the same.
  const { resource: stored } = await server.server.store.create({
    ...procedure(`Patient/${Q.patient}`),
    performer: [{ actor: { reference: `Patient/${P.patient}` } }],
  });
  mentionsP = stored.id as string;
}, 60_000);

afterAll(async () => {
  await server.stop();
});

test('a resource that only mentions the person (performer) is not theirs: read 404, not in search or $everything', async () => {
  const portalP = await server.token('portal', { pid: P.fnr });
  const missing = await call(server, portalP, 'GET', 'Procedure/does-not-exist');
  const read = await call(server, portalP, 'GET', `Procedure/${mentionsP}`);
  expect(`${read.status} ${read.text}`).toBe(`${missing.status} ${missing.text}`);
  expect((await call(server, portalP, 'GET', `Procedure/${mentionsP}/_history/1`)).status).toBe(404);
  const search = await call<Bundle>(server, portalP, 'GET', 'Procedure?_count=100');
  expect(idsIn(search.body, 'Procedure')).toEqual([`Procedure/${ownProcedure}`]);
  const byPerformer = await call<Bundle>(server, portalP, 'GET', `Procedure?performer=Patient/${P.patient}`);
  expect(idsIn(byPerformer.body, 'Procedure')).toEqual([]);
  const everything = await call<Bundle>(server, portalP, 'GET', 'Patient/$everything');
  expect(idsIn(everything.body)).toContain(`Procedure/${ownProcedure}`);
  expect(idsIn(everything.body)).toContain(`Condition/${P.condition}`);
  expect(idsIn(everything.body)).not.toContain(`Procedure/${mentionsP}`);
  // Q, whose record it is, sees it.
  const portalQ = await server.token('portal', { pid: Q.fnr });
  expect((await call(server, portalQ, 'GET', `Procedure/${mentionsP}`)).status).toBe(200);
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
    ['author: a Patient that does not exist', () => ({ author: { reference: 'Patient/does-not-exist' } })],
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
    // By HPR number: the registry keeps no Practitioner to refer to (src/dictionary), nor the author.
    const reply = await call(server, clinic, 'POST', 'QuestionnaireResponse', {
      ...response({ reference: `Patient/${P.patient}` }),
      author: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.4', value: '9144900' } },
    });
    expect(reply.status).toBe(201);
  });
});

/**
 * A portal token's pid is read one way wherever it is used: the person's own reads and
 * `Patient/$everything` both give the person's data, or both refuse the token the same way. A D-number
 * shows the difference a second reading made: its kind is read from the first digit, where white
 * space in the claim would stand.
 */
describe('a pid as the token writes it names the same person, or nobody, on every path', () => {
  let D: PersonData;

  beforeAll(async () => {
    const [dnr] = people(11033, 1, 'dnr');
    D = await submitPerson(server, clinic, dnr, UNIT_A, DNR_SYSTEM);
  });

  const spaced: [string, (id: string) => string][] = [
    ['as issued', (id) => id],
    ['after a space', (id) => ` ${id}`],
    ['between a tab and a newline', (id) => `\t${id}\n`],
    ['before a space', (id) => `${id} `],
    ['split after the date', (id) => `${id.slice(0, 6)} ${id.slice(6)}`],
  ];

  test.each(spaced)(
    'a pid %s: its person reads their data and gets it from $everything',
    async (_name, pid) => {
      const portal = await server.token('portal', { pid: pid(D.fnr) });
      expect((await call(server, portal, 'GET', `Patient/${D.patient}`)).status).toBe(200);
      const search = await call<Bundle>(server, portal, 'GET', 'Condition?_count=100');
      expect(idsIn(search.body)).toEqual([`Condition/${D.condition}`]);
      const everything = await call<Bundle>(server, portal, 'GET', 'Patient/$everything');
      expect(everything.status).toBe(200);
      expect(idsIn(everything.body)).toEqual(
        expect.arrayContaining([`Patient/${D.patient}`, `Condition/${D.condition}`]),
      );
    },
  );

  const odd: [string, (id: string) => string][] = [
    ['with a hyphen after the date', (id) => `${id.slice(0, 6)}-${id.slice(6)}`],
    ['with a letter', (id) => `${id}x`],
    ['one digit short', (id) => id.slice(1)],
    ['with a wrong check digit', (id) => id.slice(0, 10) + String((Number(id[10]) + 1) % 10)],
    ['in full-width digits', (id) => id.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)))],
  ];

  test.each(odd)('a pid %s names nobody: reads and $everything refuse it alike', async (_name, pid) => {
    const portal = await server.token('portal', { pid: pid(D.fnr) });
    const read = await call<OperationOutcome>(server, portal, 'GET', `Patient/${D.patient}`);
    const search = await call<OperationOutcome>(server, portal, 'GET', 'Condition?_count=100');
    const everything = await call<OperationOutcome>(server, portal, 'GET', 'Patient/$everything');
    expect(read.status).toBe(401);
    expect(read.body.issue[0].details?.text).toContain('helseid://claims/identity/pid must be a valid');
    expect([search.status, search.text]).toEqual([read.status, read.text]);
    expect([everything.status, everything.text]).toEqual([read.status, read.text]);
    expect(read.text).not.toContain(D.fnr);
  });
});
