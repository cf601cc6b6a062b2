import type { Bundle, Condition, OperationOutcome, Parameters, Patient } from '@medplum/fhirtypes';
import {
  ANSWER_SYSTEM,
  answersByTag,
  call,
  FNR_SYSTEM,
  condition,
  people,
  reservation,
  STARTED,
  submission,
  TAG_SYSTEM,
} from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * References at the door (issue 10, "one reference parser"; issue 12, "a reference must resolve"), through
 * HTTP on the embedded store: every non-canonical form is refused with an actionable 422 and nothing is
 * stored; conditional references are stored as the Patient/<id> they resolve to; a reserved person does
 * not come back through any spelling; the age rule sees through a versioned reference; and a reference to
 * nothing reads the same as a reference outside the caller's unit.
 */

let server: TestServer;
let clinic: string;
let admin: string;
const ids = people(10_012, 12);
const PSEUDONYM_SYSTEM = 'https://norpain.no/fhir/NamingSystem/registry-pseudonym';

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic');
  admin = await server.token('registry-admin');
});

afterAll(async () => {
  await server.stop();
});

/** Stores a person through a clinic transaction and returns their Patient (as stored, pseudonymous). */
async function registered(fnr: string, tag: string, options: { unit?: string; birthDate?: string } = {}) {
  const token = options.unit === undefined ? clinic : await server.token('clinic', { org: options.unit });
  const reply = await call<Bundle>(
    server,
    token,
    'POST',
    '',
    submission([{ system: FNR_SYSTEM, value: fnr }], tag, [`${tag}-first`], options),
  );
  expect(reply.status).toBe(200);
  const location = reply.body.entry?.[0].response?.location as string;
  const patientId = location.split('/')[1];
  return (await call<Patient>(server, admin, 'GET', `Patient/${patientId}`)).body;
}

/** The Conditions stored for a test tag, as the registry staff see them. */
async function stored(tag: string): Promise<Condition[]> {
  const reply = await call<Bundle<Condition>>(
    server,
    admin,
    'GET',
    `Condition?code=${encodeURIComponent(`${TAG_SYSTEM}|${tag}`)}&_lastUpdated=ge${STARTED}`,
  );
  expect(reply.status).toBe(200);
  return (reply.body.entry ?? []).map((e) => e.resource as Condition);
}

/** The answer a stored Condition carries (its ICPC-2 code, see condition()). */
function answerOf(condition: Condition): string | undefined {
  return condition.code?.coding?.find((c) => c.system === ANSWER_SYSTEM)?.code;
}

/** A clinic's Condition about the person the reference names, tagged for stored(). */
function sendCondition<T = OperationOutcome>(
  tag: string,
  answer: string,
  reference: string,
  headers: Record<string, string> = {},
) {
  return call<T>(server, clinic, 'POST', 'Condition', condition(tag, answer, { reference }), headers);
}

function texts(outcome: OperationOutcome): string[] {
  return (outcome.issue ?? []).map((i) => i.details?.text ?? '');
}

describe('non-canonical references are refused with 422, nothing stored', () => {
  let patientId: string;

  beforeAll(async () => {
    patientId = (await registered(ids[0], 'n0')).id as string;
  });

  const forms: [string, (id: string) => string, RegExp][] = [
    ['a resource type in lower case', (id) => `patient/${id}`, /case-sensitive.*"Patient"/],
    ['a trailing slash', (id) => `Patient/${id}/`, /without a trailing slash/],
    [
      "another server's absolute URL",
      (id) => `https://other.example.no/fhir/Patient/${id}`,
      /points elsewhere/,
    ],
    ['white space', (id) => ` Patient/${id}`, /white space/],
    ['an id FHIR does not allow', () => 'Patient/a_b', /not a valid resource id/],
    ['Patient/_history', () => 'Patient/_history', /not a valid resource id/],
    ['extra path segments', (id) => `Patient/${id}/x`, /Type\/id/],
    ['a malformed urn:uuid', () => 'urn:uuid:NOT-A-UUID', /UUID/],
  ];

  test.each(forms)('%s', async (_name, form, reason) => {
    const reply = await sendCondition<OperationOutcome>('n0', 'n0-refused', form(patientId));
    expect(reply.status).toBe(422);
    expect(reply.body.resourceType).toBe('OperationOutcome');
    expect(reply.body.issue?.[0].expression).toEqual(['Condition.subject.reference']);
    expect(texts(reply.body)[0]).toMatch(reason);
    expect((await stored('n0')).map(answerOf)).toEqual(['n0-first']);
  });

  test('a reference inside an extension is held to the same rule', async () => {
    const resource = {
      ...condition('n0', 'n0-extension', { reference: `Patient/${patientId}` }),
      extension: [{ url: 'https://example.org/x', valueReference: { reference: `patient/${patientId}` } }],
    };
    const reply = await call<OperationOutcome>(server, clinic, 'POST', 'Condition', resource);
    expect(reply.status).toBe(422);
    expect(reply.body.issue?.[0].expression).toEqual(['Condition.extension[0].valueReference.reference']);
    expect((await stored('n0')).map(answerOf)).toEqual(['n0-first']);
  });

  test("this server's own absolute URL is accepted and stored relative", async () => {
    const reply = await sendCondition<Condition>(
      'n0',
      'n0-absolute',
      `${server.baseUrl}/Patient/${patientId}`,
    );
    expect(reply.status).toBe(201);
    const read = await call<Condition>(server, admin, 'GET', `Condition/${reply.body.id}`);
    expect(read.body.subject?.reference).toBe(`Patient/${patientId}`);
  });

  test('a urn:uuid that names no entry of the transaction, and one outside a transaction', async () => {
    const bundle = submission([{ system: FNR_SYSTEM, value: ids[1] }], 'n1', ['n1-a']);
    bundle.entry?.push({
      fullUrl: 'urn:uuid:0b5c1c1e-3f7a-4a36-9d51-9f0c1c0f4a11',
      resource: condition('n1', 'n1-dangling', {
        reference: 'urn:uuid:6d1f7c2a-5b8e-4f0a-a1c3-2e9b7d4c8f00',
      }),
      request: { method: 'POST', url: 'Condition' },
    });
    const inTransaction = await call<OperationOutcome>(server, clinic, 'POST', '', bundle);
    expect(inTransaction.status).toBe(422);
    expect(inTransaction.body.issue?.[0].expression).toEqual(['Bundle.entry[3].resource.subject.reference']);
    expect(texts(inTransaction.body)[0]).toMatch(/fullUrl of another entry/);
    // The whole transaction was refused: the person in it was not stored either.
    expect(await stored('n1')).toEqual([]);

    const single = await sendCondition<OperationOutcome>(
      'n1',
      'n1-single',
      'urn:uuid:6d1f7c2a-5b8e-4f0a-a1c3-2e9b7d4c8f00',
    );
    expect(single.status).toBe(422);
    expect(texts(single.body)[0]).toMatch(/Type\/id/);
    expect(await stored('n1')).toEqual([]);
  });

  test('#id with no contained resource of that id', async () => {
    const reply = await call<OperationOutcome>(server, clinic, 'POST', 'Condition', {
      ...condition('n0', 'n0-contained', { reference: `Patient/${patientId}` }),
      encounter: { reference: '#nobody' },
    });
    expect(reply.status).toBe(422);
    expect(reply.body.issue?.[0].expression).toEqual(['Condition.encounter.reference']);
    expect(texts(reply.body)[0]).toMatch(/no contained resource/);
    expect((await stored('n0')).map(answerOf).sort()).toEqual(['n0-absolute', 'n0-first']);
  });

  test('every problem of a write is reported at once', async () => {
    const reply = await call<OperationOutcome>(server, clinic, 'POST', 'Condition', {
      ...condition('n0', 'n0-two', { reference: `patient/${patientId}` }),
      encounter: { reference: 'Encounter/x/' },
    });
    expect(reply.status).toBe(422);
    expect(reply.body.issue?.map((i) => i.expression?.[0])).toEqual([
      'Condition.subject.reference',
      'Condition.encounter.reference',
    ]);
  });
});

describe('references inside conditional queries are held to the same parser', () => {
  test('If-None-Exist and a conditional update naming the Patient in a non-canonical form: 422', async () => {
    const patientId = (await registered(ids[8], 'q1')).id as string;
    const ifNoneExist = await sendCondition<OperationOutcome>('q1', 'q1-if-none', `Patient/${patientId}`, {
      'if-none-exist': `subject=patient/${patientId}`,
    });
    expect(ifNoneExist.status).toBe(422);
    expect(ifNoneExist.body.issue?.[0].expression).toEqual(['If-None-Exist']);
    expect(texts(ifNoneExist.body)[0]).toMatch(/conditional query.*case-sensitive/);

    const update = await call<OperationOutcome>(
      server,
      clinic,
      'PUT',
      `Condition?subject=${encodeURIComponent(`Patient/${patientId}/`)}`,
      condition('q1', 'q1-update', { reference: `Patient/${patientId}` }),
    );
    expect(update.status).toBe(422);
    expect(texts(update.body)[0]).toMatch(/trailing slash/);
    expect((await stored('q1')).map(answerOf)).toEqual(['q1-first']);
  });

  test("this server's absolute URL in If-None-Exist matches the stored relative reference", async () => {
    const patientId = (await registered(ids[9], 'q6')).id as string;
    const first = (await stored('q6'))[0];
    const reply = await sendCondition<Condition>('q6', 'q6-again', `Patient/${patientId}`, {
      'if-none-exist': `subject=${encodeURIComponent(`${server.baseUrl}/Patient/${patientId}`)}&code=${encodeURIComponent(`${TAG_SYSTEM}|q6`)}`,
    });
    expect(reply.status).toBe(200);
    expect(reply.body.id).toBe(first.id);
    expect((await stored('q6')).map(answerOf)).toEqual(['q6-first']);
  });
});

describe('conditional references are stored as the Patient/<id> they resolve to', () => {
  let patient: Patient;

  beforeAll(async () => {
    patient = await registered(ids[2], 'c2');
  });

  async function storedSubjectOf(reference: string, answer: string): Promise<string | undefined> {
    const reply = await sendCondition<Condition>('c2', answer, reference);
    expect(reply.status).toBe(201);
    const read = await call<Condition>(server, admin, 'GET', `Condition/${reply.body.id}`);
    expect(read.text).not.toContain(ids[2]);
    return read.body.subject?.reference;
  }

  test('by national id with a URL-encoded system', async () => {
    const reference = `Patient?identifier=${encodeURIComponent(`${FNR_SYSTEM}|${ids[2]}`)}`;
    expect(await storedSubjectOf(reference, 'c2-encoded')).toBe(`Patient/${patient.id}`);
  });

  test('by national id with the identifier system in upper case (URN:OID: is case-insensitive)', async () => {
    const reference = `Patient?identifier=${FNR_SYSTEM.toUpperCase()}|${ids[2]}`;
    expect(await storedSubjectOf(reference, 'c2-upper')).toBe(`Patient/${patient.id}`);
  });

  test('by pseudonym with an extra search parameter, URL-encoded', async () => {
    const pseudonym = patient.identifier?.find((i) => i.system === PSEUDONYM_SYSTEM)?.value as string;
    const reference = `Patient?identifier=${encodeURIComponent(`${PSEUDONYM_SYSTEM}|${pseudonym}`)}&_id=${patient.id}`;
    expect(await storedSubjectOf(reference, 'c2-pseudonym')).toBe(`Patient/${patient.id}`);
  });

  test('a national id beside other search parameters is refused, not searched as text', async () => {
    const reply = await sendCondition<OperationOutcome>(
      'c2',
      'c2-extra',
      `Patient?identifier=${FNR_SYSTEM}|${ids[2]}&_id=${patient.id}`,
    );
    expect(reply.status).toBe(422);
    expect(texts(reply.body)[0]).toMatch(/only as Patient\?identifier=<system>\|<number>/);
    expect(reply.text).not.toContain(ids[2]);
    expect((await stored('c2')).map(answerOf)).not.toContain('c2-extra');
  });

  test('a conditional reference that matches nothing is refused', async () => {
    const reply = await sendCondition<OperationOutcome>(
      'c2',
      'c2-none',
      `Patient?identifier=${PSEUDONYM_SYSTEM}|no-such-pseudonym`,
    );
    expect(reply.status).toBe(422);
    expect(texts(reply.body)[0]).toMatch(/matches no resource/);
    expect((await stored('c2')).map(answerOf)).not.toContain('c2-none');
  });
});

describe('a reserved person cannot be re-included through any reference form', () => {
  test('each form is refused and nothing about the person is stored', async () => {
    const fnr = ids[3];
    const old = await registered(fnr, 'x3');
    expect(
      (await call(server, admin, 'POST', 'Consent', reservation(fnr, { channel: 'letter' }))).status,
    ).toBe(201);
    // Malformed spellings are refused at the door (422); every form that names the person is refused by
    // the exclusion check (403), whichever way the person is named, also with the identifier system in
    // upper case (systems are compared in canonical form, src/identity/nationalId.ts canonicalSystem).
    const forms: [string, number][] = [
      [`patient/${old.id}`, 422],
      [`Patient/${old.id}/`, 422],
      [`${server.baseUrl}/Patient/${old.id}`, 403],
      [`Patient/${old.id}/_history/1`, 403],
      [`Patient?identifier=${encodeURIComponent(`${FNR_SYSTEM}|${fnr}`)}`, 403],
      [`Patient?identifier=${FNR_SYSTEM}|${fnr}&_count=1`, 422],
      [`Patient?identifier=${FNR_SYSTEM.toUpperCase()}|${fnr}`, 403],
    ];
    for (const [i, [reference, status]] of forms.entries()) {
      const reply = await sendCondition<OperationOutcome>('x3', `x3-${i}`, reference);
      expect({ reference, status: reply.status }).toEqual({ reference, status });
      expect(reply.text).not.toContain(fnr);
    }
    expect((await answersByTag(server, admin)).get('x3')).toBeUndefined();
  });
});

describe('what is stored through an accepted form is erased with the person', () => {
  test('versioned, absolute and conditional references all lead the reservation to the data', async () => {
    const fnr = people(10_013, 1)[0];
    const patient = await registered(fnr, 'e1');
    const references = [
      `Patient/${patient.id}/_history/${patient.meta?.versionId}`,
      `${server.baseUrl}/Patient/${patient.id}`,
      `Patient?identifier=${encodeURIComponent(`${FNR_SYSTEM}|${fnr}`)}`,
    ];
    for (const [i, reference] of references.entries()) {
      expect((await sendCondition('e1', `e1-${i}`, reference)).status).toBe(201);
    }
    expect((await stored('e1')).length).toBe(4);
    const portal = await server.token('portal', { pid: fnr });
    const receipt = await call<Parameters>(server, portal, 'POST', 'Consent', reservation(fnr));
    expect(receipt.status).toBe(201);
    expect(receipt.body.parameter?.find((p) => p.name === 'residual')?.valueInteger).toBe(0);
    expect(await stored('e1')).toEqual([]);
  });
});

describe('the age rule sees through a versioned reference', () => {
  test('an episode for a young person referenced as Patient/<id>/_history/<v> is refused', async () => {
    const patient = await registered(ids[4], 'a4', { birthDate: '2000-06-15' });
    const version = patient.meta?.versionId as string;
    const episode = (start: string) => ({
      resourceType: 'EpisodeOfCare',
      extension: [{ url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: start }],
      status: 'active',
      patient: { reference: `Patient/${patient.id}/_history/${version}` },
      managingOrganization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' } },
      period: { start },
    });
    const early = await call<OperationOutcome>(
      server,
      clinic,
      'POST',
      'EpisodeOfCare',
      episode('2012-01-01'),
    );
    expect(early.status).toBe(422);
    expect(texts(early.body)[0]).toMatch(/minimum-age/);
    expect(early.body.issue?.[0].expression).toEqual(['EpisodeOfCare.period.start']);
    const search = await call<Bundle>(server, admin, 'GET', `EpisodeOfCare?patient=Patient/${patient.id}`);
    expect(search.body.entry?.map((e) => e.resource?.meta?.versionId)).toHaveLength(1);

    const later = await call(server, clinic, 'POST', 'EpisodeOfCare', episode('2024-01-01'));
    expect(later.status).toBe(201);
  });
});

describe("a reference must name a resource within the caller's reach", () => {
  test('one that does not exist and one in another unit get the same answer', async () => {
    const elsewhere = await registered(ids[5], 'u5', { unit: '999002' });
    const answers: OperationOutcome[] = [];
    for (const reference of [
      'Patient/does-not-exist',
      `Patient/${elsewhere.id}`,
      `Patient/${elsewhere.id}/_history/${elsewhere.meta?.versionId}`,
      `Patient/${elsewhere.id}/_history/99`,
    ]) {
      const reply = await sendCondition<OperationOutcome>('u5', 'u5-foreign', reference);
      expect(reply.status).toBe(422);
      answers.push(reply.body);
    }
    const shapes = answers.map((o) => o.issue?.map((i) => [i.code, i.details?.text, i.expression]));
    expect(new Set(shapes.map((s) => JSON.stringify(s))).size).toBe(1);
    expect(texts(answers[0])[0]).toMatch(/does not exist/);
    expect((await answersByTag(server, admin)).get('u5')).toEqual(new Set(['u5-first']));
  });

  test('a conditional reference to a Patient of another unit reads as one that matches nothing', async () => {
    const elsewhere = await registered(ids[7], 'u7', { unit: '999003' });
    const pseudonym = elsewhere.identifier?.find((i) => i.system === PSEUDONYM_SYSTEM)?.value as string;
    const answers: OperationOutcome[] = [];
    for (const reference of [
      `Patient?identifier=${PSEUDONYM_SYSTEM}|${pseudonym}`,
      `Patient?identifier=${PSEUDONYM_SYSTEM}|no-such-pseudonym`,
      `Patient?_id=${elsewhere.id}`,
    ]) {
      const reply = await sendCondition<OperationOutcome>('u7', 'u7-foreign', reference);
      expect(reply.status).toBe(422);
      answers.push(reply.body);
    }
    const shapes = answers.map((o) => JSON.stringify(o.issue));
    expect(new Set(shapes).size).toBe(1);
    expect((await answersByTag(server, admin)).get('u7')).toEqual(new Set(['u7-first']));
  });

  // The write path knows a Patient's units without asking the store (src/store/patientFacts.ts): what it
  // knows must follow every write of that Patient at once.
  test('a Patient another unit registers comes within its reach with that write', async () => {
    const elsewhere = await registered(ids[10], 'u8', { unit: '999002' });
    const before = await sendCondition<OperationOutcome>('u8', 'u8-before', `Patient/${elsewhere.id}`);
    expect(before.status).toBe(422);
    const patient = { resourceType: 'Patient', identifier: [{ system: FNR_SYSTEM, value: ids[10] }] };
    expect((await call(server, clinic, 'POST', 'Patient', patient)).status).toBe(200);
    const after = await sendCondition('u8', 'u8-after', `Patient/${elsewhere.id}`);
    expect(after.status).toBe(201);
    expect((await answersByTag(server, admin)).get('u8')).toEqual(new Set(['u8-first', 'u8-after']));
  });

  test('a deleted Patient is no target, however recently it was one', async () => {
    const patient = { resourceType: 'Patient', identifier: [{ system: FNR_SYSTEM, value: ids[11] }] };
    const created = await call<Patient>(server, clinic, 'POST', 'Patient', patient);
    expect(created.status).toBe(201);
    expect((await call(server, clinic, 'DELETE', `Patient/${created.body.id}`)).status).toBeLessThan(300);
    const reply = await sendCondition<OperationOutcome>('u9', 'u9-deleted', `Patient/${created.body.id}`);
    expect(reply.status).toBe(422);
    expect(texts(reply.body)[0]).toMatch(/does not exist/);
    expect((await answersByTag(server, admin)).get('u9')).toBeUndefined();
  });

  test('a reference to another entry of the same transaction, by fullUrl, is accepted', async () => {
    const reply = await call<Bundle>(
      server,
      clinic,
      'POST',
      '',
      submission([{ system: FNR_SYSTEM, value: ids[6] }], 'u6', ['u6-a']),
    );
    expect(reply.status).toBe(200);
    const [conditionId] = (reply.body.entry ?? [])
      .map((e) => e.response?.location as string)
      .filter((l) => l.startsWith('Condition/'))
      .map((l) => l.split('/')[1]);
    const read = await call<Condition>(server, admin, 'GET', `Condition/${conditionId}`);
    expect(read.body.subject?.reference).toBe(
      reply.body.entry?.[0].response?.location?.split('/_history')[0],
    );
  });
});
