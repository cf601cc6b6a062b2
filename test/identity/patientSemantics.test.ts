import type { Bundle, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { registryPseudonymSystem } from '../../src/identity/pseudonym';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { call, ok, reservation, type Reply } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * R4 Patient semantics with one Patient per person (issue 16), through real HTTP: a matching conditional
 * create writes nothing; a plain create of a person already held is an update and says so; history shows
 * the version that created a Patient as its create; an EPR's read-modify-write by the registry pseudonym
 * works for that Patient only.
 */
const random = seededRandom(1616);
const FNR = preferredSystem.fnr;

let server: TestServer;
let clinic: string;
let clinicB: string;
let staff: string;

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic', { org: '999001' });
  clinicB = await server.token('clinic', { org: '999002' });
  staff = await server.token('registry-admin');
});
afterAll(async () => {
  await server.stop();
});

const fnr = () => syntheticNationalId('fnr', { random });

function patient(id: string, extra: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ system: FNR, value: id }],
    name: [{ family: 'Testesen', given: ['Tove'] }],
    gender: 'female',
    birthDate: '1975-03-09',
    ...extra,
  };
}

async function history(token: string, id: string): Promise<Bundle> {
  return ok(await call<Bundle>(server, token, 'GET', `Patient/${id}/_history`), 200);
}

function outcomeText(reply: Reply<unknown>): string {
  return ((reply.body as OperationOutcome).issue ?? []).map((i) => i.details?.text ?? '').join(' ');
}

describe('conditional create (If-None-Exist)', () => {
  test('a match writes no new version: 200 with the Patient as it was', async () => {
    const id = fnr();
    const ifNoneExist = { 'if-none-exist': `identifier=${FNR}|${id}`, prefer: 'return=representation' };
    const created = await call<Patient>(server, clinic, 'POST', 'Patient', patient(id), ifNoneExist);
    const first = ok(created, 201);
    const again = await call<Patient>(
      server,
      clinic,
      'POST',
      'Patient',
      patient(id, { gender: 'male' }),
      ifNoneExist,
    );
    const matched = ok(again, 200);
    expect(matched.id).toBe(first.id);
    expect(matched.meta?.versionId).toBe(first.meta?.versionId);
    expect(matched.gender).toBe('female');
    expect(again.text).not.toContain(id);
    const read = ok(await call<Patient>(server, clinic, 'GET', `Patient/${first.id}`), 200);
    expect(read.gender).toBe('female');
    expect((await history(clinic, first.id as string)).total).toBe(1);
    // Asked for an OperationOutcome, it says nothing was written.
    const outcome = await call(server, clinic, 'POST', 'Patient', patient(id), {
      ...ifNoneExist,
      prefer: 'return=OperationOutcome',
    });
    expect(outcome.status).toBe(200);
    expect(outcomeText(outcome)).toContain('nothing was written');
  });

  test('no match: the Patient is created (201), shown as a create in history', async () => {
    const id = fnr();
    const reply = await call<Patient>(server, clinic, 'POST', 'Patient', patient(id), {
      'if-none-exist': `identifier=${FNR}|${id}`,
      prefer: 'return=representation',
    });
    const created = ok(reply, 201);
    const entries = (await history(clinic, created.id as string)).entry ?? [];
    expect(entries.map((e) => e.request?.method)).toEqual(['POST']);
  });

  test("a query matching another person's Patient does not stand in for this person's", async () => {
    const other = ok(await call<Patient>(server, clinic, 'POST', 'Patient', patient(fnr())), 201);
    const id = fnr();
    const own = ok(await call<Patient>(server, clinic, 'POST', 'Patient', patient(id)), 201);
    const reply = await call<Patient>(server, clinic, 'POST', 'Patient', patient(id, { gender: 'male' }), {
      'if-none-exist': `_id=${other.id}`,
      prefer: 'return=representation',
    });
    // No match among this person's Patient: the registry's one Patient of the person is written.
    expect(ok(reply, 200)).toMatchObject({ id: own.id, gender: 'male', meta: { versionId: '2' } });
    const untouched = ok(await call<Patient>(server, clinic, 'GET', `Patient/${other.id}`), 200);
    expect(untouched).toMatchObject({ gender: 'female', meta: { versionId: '1' } });
  });

  test('in a transaction, a matching Patient entry is ignored and its urn:uuid still names the person', async () => {
    const id = fnr();
    const first = ok(await call<Patient>(server, clinic, 'POST', 'Patient', patient(id)), 201);
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:0e7d4c1a-1616-4a1e-9d7a-000000000001',
          resource: patient(id, { gender: 'male' }),
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${FNR}|${id}` },
        },
        {
          resource: {
            resourceType: 'Encounter',
            status: 'finished',
            class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
            subject: { reference: 'urn:uuid:0e7d4c1a-1616-4a1e-9d7a-000000000001' },
          },
          request: { method: 'POST', url: 'Encounter' },
        },
      ],
    };
    const reply = ok(await call<Bundle>(server, clinic, 'POST', '', bundle), 200);
    expect(reply.entry?.map((e) => e.response?.status?.slice(0, 3))).toEqual(['200', '201']);
    expect(reply.entry?.[0].response?.location).toContain(`Patient/${first.id}/_history/1`);
    const encounters = ok(
      await call<Bundle>(server, clinic, 'GET', `Encounter?subject=Patient/${first.id}`),
      200,
    );
    expect(encounters.entry).toHaveLength(1);
    const read = ok(await call<Patient>(server, clinic, 'GET', `Patient/${first.id}`), 200);
    expect(read).toMatchObject({ gender: 'female', meta: { versionId: '1' } });
  });
});

describe('plain create of a person already held', () => {
  test('updates the one Patient: 200, never 201, and history tells create from update', async () => {
    const id = fnr();
    const first = ok(await call<Patient>(server, clinic, 'POST', 'Patient', patient(id)), 201);
    const again = await call<Patient>(server, clinic, 'POST', 'Patient', patient(id, { gender: 'male' }), {
      prefer: 'return=representation',
    });
    const updated = ok(again, 200);
    expect(updated).toMatchObject({ id: first.id, gender: 'male', meta: { versionId: '2' } });
    const told = await call(server, clinic, 'POST', 'Patient', patient(id), {
      prefer: 'return=OperationOutcome',
    });
    expect(told.status).toBe(200);
    expect(outcomeText(told)).toContain('already registered');
    expect(outcomeText(told)).not.toContain('Created');
    const entries = (await history(clinic, first.id as string)).entry ?? [];
    expect(entries.map((e) => [e.request?.method, e.response?.status])).toEqual([
      ['PUT', '200 OK'],
      ['PUT', '200 OK'],
      ['POST', '201 Created'],
    ]);
    expect(entries[2].request?.url).toBe('Patient');
  });

  test('a person first met as a reference: their Patient history starts with a create', async () => {
    const id = fnr();
    const encounter = await call(server, clinic, 'POST', 'Encounter', {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { identifier: { system: FNR, value: id } },
    });
    const subject = ok(encounter, 201) as { subject?: { reference?: string } };
    const patientId = subject.subject?.reference?.split('/')[1] as string;
    expect(ok(await call(server, clinic, 'POST', 'Patient', patient(id)), 200)).toMatchObject({
      id: patientId,
    });
    const methods = ((await history(staff, patientId)).entry ?? []).map((e) => e.request?.method);
    expect(methods).toEqual(['PUT', 'POST']);
  });
});

describe('read-modify-write by the registry pseudonym', () => {
  async function registered(): Promise<{ id: string; patient: Patient }> {
    const id = fnr();
    const created = ok(await call<Patient>(server, clinic, 'POST', 'Patient', patient(id)), 201);
    const read = ok(await call<Patient>(server, clinic, 'GET', `Patient/${created.id}`), 200);
    return { id, patient: read };
  }

  /** The Patient as read, written back to its id under a pseudonym nobody has. */
  function writeBackWithMadeUpPseudonym(token: string, read: Patient): Promise<Reply> {
    return call(server, token, 'PUT', `Patient/${read.id}`, {
      ...read,
      identifier: [
        { system: registryPseudonymSystem, value: '1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      ],
    });
  }

  test('a Patient as read, changed and written back, is updated (with If-Match)', async () => {
    const { patient: read } = await registered();
    expect(read.identifier).toEqual([expect.objectContaining({ system: registryPseudonymSystem })]);
    const reply = await call<Patient>(
      server,
      clinic,
      'PUT',
      `Patient/${read.id}`,
      { ...read, gender: 'male' },
      { 'if-match': `W/"${read.meta?.versionId}"`, prefer: 'return=representation' },
    );
    const updated = ok(reply, 200);
    expect(updated).toMatchObject({ id: read.id, gender: 'male', identifier: read.identifier });
    expect(updated.meta?.versionId).toBe('2');
    // A stale version is still refused.
    const stale = await call(server, clinic, 'PUT', `Patient/${read.id}`, read, { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);
  });

  test("another person's pseudonym, alone or beside a national id, is refused and writes nothing", async () => {
    const a = await registered();
    const b = await registered();
    const pseudonymOfB = b.patient.identifier as Patient['identifier'];
    const alone = await call(server, clinic, 'PUT', `Patient/${a.patient.id}`, {
      ...a.patient,
      identifier: pseudonymOfB,
    });
    expect(alone.status).toBe(422);
    const beside = await call(server, clinic, 'PUT', `Patient/${a.patient.id}`, {
      ...patient(a.id),
      id: a.patient.id,
      identifier: [{ system: FNR, value: a.id }, ...(pseudonymOfB ?? [])],
    });
    expect(beside.status).toBe(422);
    expect((beside.body as OperationOutcome).issue[0].expression).toEqual(['Patient.identifier[1]']);
    expect(beside.text).not.toContain(a.id);
    // Someone else's Patient written under its own id with a's pseudonym: refused the same way.
    const elsewhere = await call(server, clinic, 'PUT', `Patient/${b.patient.id}`, {
      ...b.patient,
      identifier: a.patient.identifier,
    });
    expect(elsewhere.status).toBe(422);
    for (const p of [a.patient, b.patient]) {
      const read = ok(await call<Patient>(server, clinic, 'GET', `Patient/${p.id}`), 200);
      expect(read.meta?.versionId).toBe('1');
    }
  });

  test('a made-up pseudonym, a pseudonym on a create, and a Patient with no identifier: 422, one text', async () => {
    const a = await registered();
    const madeUp = await writeBackWithMadeUpPseudonym(clinic, a.patient);
    const create = await call(server, clinic, 'POST', 'Patient', { ...a.patient, id: undefined });
    const bare = await call(server, clinic, 'PUT', `Patient/${a.patient.id}`, {
      ...a.patient,
      identifier: undefined,
    });
    for (const reply of [madeUp, create, bare]) {
      expect(reply.status).toBe(422);
      expect(outcomeText(reply)).toBe(outcomeText(madeUp));
    }
    const read = ok(await call<Patient>(server, clinic, 'GET', `Patient/${a.patient.id}`), 200);
    expect(read.meta?.versionId).toBe('1');
  });

  test('another unit cannot write back a Patient it does not see, even with its id and pseudonym', async () => {
    const a = await registered();
    const madeUp = await writeBackWithMadeUpPseudonym(clinicB, a.patient);
    const reply = await call(server, clinicB, 'PUT', `Patient/${a.patient.id}`, a.patient);
    expect(reply.status).toBe(422);
    expect(reply.text).toBe(madeUp.text);
    expect((await call(server, clinicB, 'GET', `Patient/${a.patient.id}`)).status).toBe(404);
    const read = ok(await call<Patient>(server, clinic, 'GET', `Patient/${a.patient.id}`), 200);
    expect(read.meta?.versionId).toBe('1');
    // The unit that sends the person by national id joins them, and may then write back what it reads.
    ok(await call(server, clinicB, 'POST', 'Patient', patient(a.id)), 200);
    const seen = ok(await call<Patient>(server, clinicB, 'GET', `Patient/${a.patient.id}`), 200);
    ok(await call(server, clinicB, 'PUT', `Patient/${seen.id}`, { ...seen, gender: 'male' }), 200);
  });

  test("a reserved person's old Patient cannot be written back", async () => {
    const a = await registered();
    const reserved = await call(server, staff, 'POST', 'Consent', {
      ...reservation(a.id, { channel: 'letter', system: FNR }),
    });
    expect([200, 201]).toContain(reserved.status);
    const back = await call(server, clinic, 'PUT', `Patient/${a.patient.id}`, a.patient);
    expect(back.status).toBe(403); // as every write about a reserved person
    expect(back.text).not.toContain(a.id);
    const read = await call(server, staff, 'GET', `Patient/${a.patient.id}`);
    expect([404, 410]).toContain(read.status);
  });
});
