import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Role } from '../../src/auth/principal';
import { startTestServer, type TestServer } from '../helpers/testServer';
import {
  call,
  episode,
  FNR_SYSTEM,
  idsIn,
  condition,
  people,
  questionnaire,
  response,
  submitPerson,
  UNIT_A,
  UNIT_B,
  type PersonData,
} from './fixtures';

/**
 * The authorisation matrix, cell by cell, through HTTP: role × interaction × resource type × whose data.
 * "own" is unit A's data for the clinic token (RESH 999001) and person P's for the portal token (pid = P);
 * "other" is unit B's data about person Q. The expectations are written out here, independently of
 * src/auth/matrix.ts, so that a change to the matrix shows up as a failing cell.
 *
 *   ok      the interaction succeeds (and a search finds the resource)
 *   hidden  the resource is outside the principal's view: read 404, search does not find it
 *   deny    403 with an OperationOutcome (role, scope or ownership)
 */
/** 'refused': 422, e.g. a reference to a resource outside the caller's view (src/ingest/references.ts). */
type Expect = 'ok' | 'hidden' | 'deny' | 'refused';
type Whose = 'own' | 'other';
type Kind = 'Patient' | 'EpisodeOfCare' | 'Condition' | 'QuestionnaireResponse';

let server: TestServer;
const tokens = {} as Record<Role, string>;
let admin: string;
let P: PersonData & { response: string };
let Q: PersonData & { response: string };

const KINDS: Kind[] = ['Patient', 'EpisodeOfCare', 'Condition', 'QuestionnaireResponse'];
const ROLES: Role[] = ['clinic', 'portal', 'registry-admin', 'researcher'];

function idOf(kind: Kind, whose: Whose): string {
  const person = whose === 'own' ? P : Q;
  return {
    Patient: person.patient,
    EpisodeOfCare: person.episode,
    Condition: person.condition,
    QuestionnaireResponse: person.response,
  }[kind];
}

beforeAll(async () => {
  server = await startTestServer();
  const [p, q] = people(6001, 2);
  admin = await server.token('registry-admin');
  tokens['registry-admin'] = admin;
  tokens.clinic = await server.token('clinic', { org: UNIT_A });
  tokens.portal = await server.token('portal', { pid: p });
  tokens.researcher = await server.token('researcher');
  const clinicB = await server.token('clinic', { org: UNIT_B });
  expect((await call(server, admin, 'POST', 'Questionnaire', questionnaire)).status).toBe(201);
  const own = await submitPerson(server, tokens.clinic, p, UNIT_A);
  const other = await submitPerson(server, clinicB, q, UNIT_B);
  const ownResponse = await call(
    server,
    tokens.clinic,
    'POST',
    'QuestionnaireResponse',
    response({ reference: `Patient/${own.patient}` }),
  );
  const otherResponse = await call(
    server,
    clinicB,
    'POST',
    'QuestionnaireResponse',
    response({ reference: `Patient/${other.patient}` }),
  );
  expect([ownResponse.status, otherResponse.status]).toEqual([201, 201]);
  P = { ...own, response: ownResponse.body.id as string };
  Q = { ...other, response: otherResponse.body.id as string };
}, 60_000);

afterAll(async () => {
  await server.stop();
});

function outcomeOf(status: number): Expect | `status ${number}` {
  if (status === 200 || status === 201 || status === 204) return 'ok';
  if (status === 404) return 'hidden';
  if (status === 403) return 'deny';
  if (status === 422) return 'refused';
  return `status ${status}`;
}

describe('read: GET Type/id and its history', () => {
  const expected: Record<Role, Record<Whose, Expect>> = {
    clinic: { own: 'ok', other: 'hidden' },
    portal: { own: 'ok', other: 'hidden' },
    'registry-admin': { own: 'ok', other: 'ok' },
    researcher: { own: 'deny', other: 'deny' },
  };
  const cells = ROLES.flatMap((role) =>
    KINDS.flatMap((kind) => (['own', 'other'] as Whose[]).map((whose) => [role, kind, whose] as const)),
  );
  test.each(cells)('%s reads %s (%s)', async (role, kind, whose) => {
    const read = await call(server, tokens[role], 'GET', `${kind}/${idOf(kind, whose)}`);
    expect(outcomeOf(read.status)).toBe(expected[role][whose]);
    const history = await call<Bundle>(server, tokens[role], 'GET', `${kind}/${idOf(kind, whose)}/_history`);
    expect(outcomeOf(history.status)).toBe(expected[role][whose]);
    if (read.status !== 200) {
      expect(read.body.resourceType).toBe('OperationOutcome');
      expect(read.text).not.toContain(P.fnr);
    }
  });
});

describe('search: GET Type finds only what the view holds', () => {
  const expected: Record<Role, Record<Whose, Expect>> = {
    clinic: { own: 'ok', other: 'hidden' },
    portal: { own: 'ok', other: 'hidden' },
    'registry-admin': { own: 'ok', other: 'ok' },
    researcher: { own: 'deny', other: 'deny' },
  };
  const cells = ROLES.flatMap((role) => KINDS.map((kind) => [role, kind] as const));
  test.each(cells)('%s searches %s', async (role, kind) => {
    for (const path of [`${kind}?_count=100`, `${kind}/_history?_count=100`]) {
      const reply = await call<Bundle>(server, tokens[role], 'GET', path);
      if (expected[role].own === 'deny') {
        expect(reply.status).toBe(403);
        continue;
      }
      expect(reply.status).toBe(200);
      const found = idsIn(reply.body, kind);
      for (const whose of ['own', 'other'] as Whose[]) {
        const wanted = expected[role][whose] === 'ok';
        expect([whose, found.includes(`${kind}/${idOf(kind, whose)}`)]).toEqual([whose, wanted]);
      }
    }
  });
});

describe('create', () => {
  // own: about P / for unit A; other: about Q / for unit B (what each kind can express).
  const body = (kind: 'EpisodeOfCare' | 'Condition' | 'QuestionnaireResponse', whose: Whose): Resource => {
    const person = whose === 'own' ? P : Q;
    switch (kind) {
      case 'EpisodeOfCare':
        return episode(`Patient/${P.patient}`, {
          unit: whose === 'own' ? UNIT_A : UNIT_B,
          start: '2024-06-01',
        });
      case 'Condition':
        return condition({ reference: `Patient/${person.patient}` });
      case 'QuestionnaireResponse':
        return response({ identifier: { system: FNR_SYSTEM, value: person.fnr } });
    }
  };
  const expected: Record<Role, Record<string, Record<Whose, Expect>>> = {
    clinic: {
      EpisodeOfCare: { own: 'ok', other: 'deny' },
      // A clinic refers only to Patients its unit registered (by id); by national id it may name anyone.
      Condition: { own: 'ok', other: 'refused' },
      QuestionnaireResponse: { own: 'ok', other: 'ok' },
    },
    portal: {
      EpisodeOfCare: { own: 'deny', other: 'deny' },
      Condition: { own: 'deny', other: 'deny' },
      QuestionnaireResponse: { own: 'ok', other: 'deny' },
    },
    'registry-admin': {
      EpisodeOfCare: { own: 'ok', other: 'ok' },
      Condition: { own: 'ok', other: 'ok' },
      QuestionnaireResponse: { own: 'ok', other: 'ok' },
    },
    researcher: {
      EpisodeOfCare: { own: 'deny', other: 'deny' },
      Condition: { own: 'deny', other: 'deny' },
      QuestionnaireResponse: { own: 'deny', other: 'deny' },
    },
  };
  const cells = ROLES.flatMap((role) =>
    (['EpisodeOfCare', 'Condition', 'QuestionnaireResponse'] as const).flatMap((kind) =>
      (['own', 'other'] as Whose[]).map((whose) => [role, kind, whose] as const),
    ),
  );
  test.each(cells)('%s creates %s (%s)', async (role, kind, whose) => {
    const reply = await call(server, tokens[role], 'POST', kind, body(kind, whose));
    expect([outcomeOf(reply.status), reply.text]).toEqual([expected[role][kind][whose], expect.any(String)]);
  });
});

describe('update and delete', () => {
  const expected: Record<Role, { update: Record<Whose, Expect>; delete: Record<Whose, Expect> }> = {
    clinic: { update: { own: 'ok', other: 'deny' }, delete: { own: 'ok', other: 'deny' } },
    portal: { update: { own: 'deny', other: 'deny' }, delete: { own: 'deny', other: 'deny' } },
    'registry-admin': { update: { own: 'ok', other: 'ok' }, delete: { own: 'ok', other: 'ok' } },
    researcher: { update: { own: 'deny', other: 'deny' }, delete: { own: 'deny', other: 'deny' } },
  };
  const clinicOf = async (whose: Whose) =>
    whose === 'own' ? tokens.clinic : server.token('clinic', { org: UNIT_B });
  const cells = ROLES.flatMap((role) => (['own', 'other'] as Whose[]).map((whose) => [role, whose] as const));
  test.each(cells)('%s updates and deletes a Condition (%s)', async (role, whose) => {
    const person = whose === 'own' ? P : Q;
    const created = await call(
      server,
      await clinicOf(whose),
      'POST',
      'Condition',
      condition({ reference: `Patient/${person.patient}` }),
    );
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    // The new version refers to a Patient every writer here may refer to (P, of unit A), so what is
    // decided is whether the caller may change this Condition at all.
    const update = await call(server, tokens[role], 'PUT', `Condition/${id}`, {
      ...created.body,
      subject: { reference: `Patient/${P.patient}` },
      recordedDate: '2024-03-06',
    });
    expect(outcomeOf(update.status)).toBe(expected[role].update[whose]);
    const remove = await call(server, tokens[role], 'DELETE', `Condition/${id}`);
    expect(outcomeOf(remove.status)).toBe(expected[role].delete[whose]);
    // Whatever was refused left the resource as it was.
    const after = await call(server, admin, 'GET', `Condition/${id}`);
    if (expected[role].delete[whose] === 'deny') {
      expect(after.status).toBe(200);
      expect((after.body as { recordedDate?: string }).recordedDate).toBe(
        expected[role].update[whose] === 'ok' ? '2024-03-06' : '2024-03-05',
      );
    } else {
      expect(after.status).toBe(410);
    }
  });
});

describe('definitions, reservations, the audit log and operations', () => {
  const cells: [Role, string, string, Expect][] = [
    ['clinic', 'GET', 'Questionnaire', 'ok'],
    ['portal', 'GET', 'Questionnaire', 'ok'],
    ['registry-admin', 'GET', 'Questionnaire', 'ok'],
    ['researcher', 'GET', 'Questionnaire', 'ok'],
    ['clinic', 'POST', 'Questionnaire', 'deny'],
    ['portal', 'POST', 'Questionnaire', 'deny'],
    ['researcher', 'POST', 'Questionnaire', 'deny'],
    ['clinic', 'GET', 'Organization', 'ok'],
    ['researcher', 'GET', 'Organization', 'ok'],
    ['clinic', 'GET', 'AuditEvent', 'deny'],
    ['portal', 'GET', 'AuditEvent', 'ok'],
    ['registry-admin', 'GET', 'AuditEvent', 'ok'],
    ['researcher', 'GET', 'AuditEvent', 'deny'],
    ['clinic', 'GET', 'Consent', 'deny'],
    ['portal', 'GET', 'Consent', 'deny'],
    ['researcher', 'GET', 'Consent', 'deny'],
    ['researcher', 'POST', 'Consent', 'deny'],
    ['clinic', 'GET', 'Patient/$everything', 'deny'],
    ['portal', 'GET', 'Patient/$everything', 'ok'],
    ['registry-admin', 'GET', 'Patient/$everything', 'deny'],
    ['researcher', 'GET', 'Patient/$everything', 'deny'],
    ['researcher', 'POST', 'Condition/$validate', 'deny'],
    ['clinic', 'POST', 'Condition/$correct', 'deny'],
    ['clinic', 'GET', '_history', 'deny'],
    ['portal', 'GET', '_history', 'deny'],
  ];
  test.each(cells)('%s %s %s', async (role, method, path, expected) => {
    const body =
      method === 'POST'
        ? path === 'Questionnaire'
          ? { ...questionnaire, url: `${questionnaire.url}-${role}` }
          : { resourceType: path.split('/')[0] }
        : undefined;
    const reply = await call(server, tokens[role], method, path, body);
    expect([outcomeOf(reply.status), reply.text.slice(0, 300)]).toEqual([expected, expect.any(String)]);
  });

  test('registry staff may look reservations up (past the matrix: 400 without a national id)', async () => {
    expect((await call(server, admin, 'GET', 'Consent')).status).toBe(400);
  });

  test('a portal may not reserve for someone else', async () => {
    const consent = {
      resourceType: 'Consent',
      status: 'active',
      scope: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }],
      },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { identifier: { system: FNR_SYSTEM, value: Q.fnr } },
      dateTime: '2024-05-02T09:00:00+02:00',
      policyRule: {
        coding: [{ system: 'https://norpain.no/fhir/CodeSystem/consent-policy', code: 'reservasjonsrett' }],
      },
      provision: { type: 'deny' },
    };
    expect((await call(server, tokens.portal, 'POST', 'Consent', consent)).status).toBe(403);
    expect((await call(server, admin, 'GET', `Patient/${Q.patient}`)).status).toBe(200);
  });
});

describe('scopes narrow what a role may do', () => {
  test('a clinic token with only system/QuestionnaireResponse.c can submit answers and nothing else', async () => {
    const token = await server.token('clinic', { org: UNIT_A, scopes: ['system/QuestionnaireResponse.c'] });
    const submitted = await call(
      server,
      token,
      'POST',
      'QuestionnaireResponse',
      response({ reference: `Patient/${P.patient}` }),
    );
    expect(submitted.status).toBe(201);
    expect((await call(server, token, 'GET', `QuestionnaireResponse/${P.response}`)).status).toBe(403);
    expect(
      (await call(server, token, 'POST', 'Condition', condition({ reference: `Patient/${P.patient}` })))
        .status,
    ).toBe(403);
  });

  test('v1 scopes (.read) and the HelseID audience prefix are understood', async () => {
    const token = await server.token('registry-admin', { scopes: ['norpain-fhir/user/Condition.read'] });
    expect((await call(server, token, 'GET', `Condition/${Q.condition}`)).status).toBe(200);
    expect((await call(server, token, 'DELETE', `Condition/${Q.condition}`)).status).toBe(403);
  });

  test('a clinic token may not use patient/ scopes, nor a portal token system/ scopes', async () => {
    const clinic = await server.token('clinic', { org: UNIT_A, scopes: ['patient/*.cruds'] });
    expect((await call(server, clinic, 'GET', `Condition/${P.condition}`)).status).toBe(403);
    const portal = await server.token('portal', { pid: P.fnr, scopes: ['system/*.cruds'] });
    expect((await call(server, portal, 'GET', `Condition/${P.condition}`)).status).toBe(403);
  });
});
