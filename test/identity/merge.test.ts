import type { AuditEvent, Bundle, OperationOutcome, Parameters, Patient } from '@medplum/fhirtypes';
import { AUDIT_SYSTEMS } from '../../src/audit/auditEvent';
import { registryPseudonymSystem } from '../../src/identity/pseudonym';
import {
  CHANNEL,
  FNR_SYSTEM,
  answersByTag,
  call,
  ok,
  condition,
  people,
  reservation,
  submission,
} from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * No silent merge (DESIGN §4), through real HTTP: a write whose national ids belong to two registered
 * persons is refused with 409, changes nothing and tells nothing about the other person; registry staff
 * merge persons explicitly with Patient/$merge, which is all or nothing, audited, and refuses reserved
 * persons and other roles.
 */
let server: TestServer;
let clinicA: string;
let clinicB: string;
let staff: string;

// a and b at unit 999001, c at unit 999002; the others for the merge tests.
const [a, b, c, d, e, f, g] = people(7310, 7);
/** Each person's tag and answer text: a label, never the national id (which the store would redact). */
const label = (fnr: string) => `person-${[a, b, c, d, e, f, g].indexOf(fnr)}`;

beforeAll(async () => {
  server = await startTestServer();
  clinicA = await server.token('clinic', { org: '999001' });
  clinicB = await server.token('clinic', { org: '999002' });
  staff = await server.token('registry-admin');
  for (const [id, token, unit] of [
    [a, clinicA, '999001'],
    [b, clinicA, '999001'],
    [c, clinicB, '999002'],
    [d, clinicA, '999001'],
    [e, clinicB, '999002'],
    [f, clinicA, '999001'],
    [g, clinicA, '999001'],
  ] as const) {
    ok(
      await call(
        server,
        token,
        'POST',
        '',
        submission([{ system: FNR_SYSTEM, value: id }], label(id), [`answer-${label(id)}`], { unit }),
      ),
      200,
    );
  }
});
afterAll(async () => {
  await server.stop();
});

async function patientOf(fnr: string): Promise<Patient | undefined> {
  const found = ok(
    await call<Bundle>(
      server,
      staff,
      'GET',
      `Patient?identifier=${encodeURIComponent(`${FNR_SYSTEM}|${fnr}`)}`,
    ),
    200,
  );
  expect((found.entry ?? []).length).toBeLessThanOrEqual(1);
  return found.entry?.[0]?.resource as Patient | undefined;
}

function bothIds(first: string, second: string, secondSystem = FNR_SYSTEM): Patient {
  return {
    resourceType: 'Patient',
    identifier: [
      { system: FNR_SYSTEM, value: first },
      { system: secondSystem, value: second },
    ],
  };
}

function mergeParameters(
  source: Parameters['parameter'],
  target: Parameters['parameter'],
  preview = false,
): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      ...(source ?? []),
      ...(target ?? []),
      ...(preview ? [{ name: 'preview', valueBoolean: true }] : []),
    ],
  };
}

const byId = (side: 'source' | 'target', patient: Patient | undefined) => [
  { name: `${side}-patient`, valueReference: { reference: `Patient/${patient?.id}` } },
];
const byFnr = (side: 'source' | 'target', fnr: string, system = FNR_SYSTEM) => [
  { name: `${side}-patient-identifier`, valueIdentifier: { system, value: fnr } },
];

describe('a write naming two registered persons', () => {
  test('is refused with 409 whoever the other person is; the outcome names no person, id or unit', async () => {
    const before = await answersByTag(server, staff);
    const patients = await Promise.all([a, b, c].map(patientOf));
    const sameUnit = await call<OperationOutcome>(server, clinicA, 'POST', 'Patient', bothIds(a, b));
    const otherUnit = await call<OperationOutcome>(server, clinicA, 'POST', 'Patient', bothIds(a, c));
    // Writing the other person's id in another case of its system changes nothing.
    const upperCase = await call<OperationOutcome>(
      server,
      clinicA,
      'POST',
      'Patient',
      bothIds(a, c, FNR_SYSTEM.toUpperCase()),
    );
    for (const reply of [sameUnit, otherUnit, upperCase]) {
      expect(reply.status).toBe(409);
      expect(reply.body.issue[0]).toMatchObject({ code: 'conflict', expression: ['Patient.identifier'] });
      for (const secret of [a, b, c, '999002', ...patients.map((p) => p?.id as string)]) {
        expect(reply.text).not.toContain(secret);
      }
    }
    expect(otherUnit.text).toBe(sameUnit.text);
    expect(upperCase.text).toBe(sameUnit.text);

    // Nothing changed: the same three Patients, the same answers.
    expect(await Promise.all([a, b, c].map(patientOf))).toEqual(patients);
    expect(await answersByTag(server, staff)).toEqual(before);
  });

  test('a transaction with such a Patient is refused whole and stores nothing', async () => {
    const before = await answersByTag(server, staff);
    const bundle = submission(
      [
        { system: FNR_SYSTEM, value: a },
        { system: FNR_SYSTEM, value: c },
      ],
      label(a),
      ['never-stored'],
    );
    const reply = await call(server, clinicA, 'POST', '', bundle);
    expect(reply.status).toBe(409);
    expect(reply.text).toContain('Bundle.entry[0].resource.identifier');
    expect(await answersByTag(server, staff)).toEqual(before);
  });

  test('a new id of one registered person is still linked to them automatically', async () => {
    const [newDnr] = people(7311, 1, 'dnr');
    const known = await patientOf(a);
    const linked = ok(
      await call<Patient>(
        server,
        clinicA,
        'POST',
        'Patient',
        bothIds(a, newDnr, 'urn:oid:2.16.578.1.12.4.1.4.2'),
        {
          prefer: 'return=representation',
        },
      ),
      200,
    );
    expect(linked.id).toBe(known?.id);
  });

  test("each person's portal still sees only their own data", async () => {
    for (const [own, others] of [
      [a, [b, c]],
      [b, [a, c]],
      [c, [a, b]],
    ] as const) {
      const portal = await server.token('portal', { pid: own });
      const everything = ok(await call<Bundle>(server, portal, 'GET', 'Patient/$everything'), 200);
      const text = JSON.stringify(everything);
      expect(text).toContain(`answer-${label(own)}`);
      for (const other of others) {
        expect(text).not.toContain(`answer-${label(other)}`);
      }
    }
  });

  test("reserving one of them leaves the other's data intact", async () => {
    ok(
      await call(server, staff, 'POST', 'Consent', {
        ...reservation(c),
        extension: [{ url: CHANNEL, valueCode: 'letter' }],
      }),
      201,
    );
    const answers = await answersByTag(server, staff);
    expect(answers.get(label(a))).toContain(`answer-${label(a)}`);
    expect(answers.get(label(b))).toContain(`answer-${label(b)}`);
    expect(answers.has(label(c))).toBe(false);
    expect(await patientOf(a)).toBeDefined();
  });
});

describe('Patient/$merge', () => {
  test('only registry staff may merge', async () => {
    const portal = await server.token('portal', { pid: d });
    const body = mergeParameters(byFnr('source', d), byFnr('target', e));
    for (const token of [clinicA, portal]) {
      const reply = await call<OperationOutcome>(server, token, 'POST', 'Patient/$merge', body);
      expect(reply.status).toBe(403);
      expect(reply.text).not.toContain(d);
    }
    expect((await patientOf(d))?.id).not.toBe((await patientOf(e))?.id);
  });

  test('preview changes nothing; result-patient, one person twice and unknown persons are refused', async () => {
    const before = await answersByTag(server, staff);
    const [pd, pe] = [await patientOf(d), await patientOf(e)];
    const preview = ok(
      await call<Parameters>(
        server,
        staff,
        'POST',
        'Patient/$merge',
        mergeParameters(byId('source', pd), byId('target', pe), true),
      ),
      200,
    );
    const outcome = preview.parameter?.find((p) => p.name === 'outcome')?.resource as OperationOutcome;
    expect(outcome.issue[0].diagnostics ?? outcome.issue[0].details?.text).toMatch(/Preview.*2 resource/);
    expect([await patientOf(d), await patientOf(e)]).toEqual([pd, pe]);
    expect(await answersByTag(server, staff)).toEqual(before);

    const withResult = mergeParameters(byId('source', pd), byId('target', pe));
    withResult.parameter?.push({ name: 'result-patient', resource: { resourceType: 'Patient' } });
    expect((await call(server, staff, 'POST', 'Patient/$merge', withResult)).status).toBe(422);
    expect(
      (
        await call(
          server,
          staff,
          'POST',
          'Patient/$merge',
          mergeParameters(byId('source', pd), byFnr('target', d)),
        )
      ).status,
    ).toBe(422);
    expect(
      (await call(server, staff, 'POST', 'Patient/$merge', mergeParameters(byId('source', pd), []))).status,
    ).toBe(422);
    const [unknown] = people(7312, 1);
    expect(
      (
        await call(
          server,
          staff,
          'POST',
          'Patient/$merge',
          mergeParameters(byFnr('source', unknown), byId('target', pe)),
        )
      ).status,
    ).toBe(404);
    expect((await call(server, staff, 'GET', 'Patient/$merge')).status).toBe(405);
  });

  test('a reserved person cannot be merged, named by national id or by its former Patient id (403)', async () => {
    const [pf] = [await patientOf(f)];
    // c reserved above.
    for (const source of [byFnr('source', c), byFnr('source', c, FNR_SYSTEM.toUpperCase())]) {
      const reply = await call(
        server,
        staff,
        'POST',
        'Patient/$merge',
        mergeParameters(source, byId('target', pf)),
      );
      expect(reply.status).toBe(403);
      expect(reply.text).not.toContain(c);
    }
    // Reserve g, then try to merge g's (erased) Patient into f by its id.
    const pg = await patientOf(g);
    ok(
      await call(server, staff, 'POST', 'Consent', {
        ...reservation(g),
        extension: [{ url: CHANNEL, valueCode: 'letter' }],
      }),
      201,
    );
    const reply = await call(
      server,
      staff,
      'POST',
      'Patient/$merge',
      mergeParameters(byId('source', pg), byId('target', pf)),
    );
    expect(reply.status).toBe(403);
    expect((await answersByTag(server, staff)).get(label(f))).toContain(`answer-${label(f)}`);
  });

  test('moves the source person into the target across units, in one step, and audits both persons', async () => {
    const [pd, pe] = [await patientOf(d), await patientOf(e)];
    const sourcePseudonym = pd?.identifier?.[0].value as string;
    const targetPseudonym = pe?.identifier?.[0].value as string;
    const merged = ok(
      await call<Parameters>(
        server,
        staff,
        'POST',
        'Patient/$merge',
        mergeParameters(byFnr('source', d, FNR_SYSTEM.toUpperCase()), byId('target', pe)),
      ),
      200,
    );
    const result = merged.parameter?.find((p) => p.name === 'result')?.resource as Patient;
    expect(result.id).toBe(pe?.id);
    expect(JSON.stringify(merged)).not.toContain(d);
    // Both national ids now name the target; the source Patient is gone.
    expect((await patientOf(d))?.id).toBe(pe?.id);
    expect((await patientOf(e))?.id).toBe(pe?.id);
    expect((await call(server, staff, 'GET', `Patient/${pd?.id}`)).status).toBe(404);
    // The target's portal (either id) sees both persons' answers.
    for (const pid of [d, e]) {
      const portal = await server.token('portal', { pid });
      const text = JSON.stringify(ok(await call<Bundle>(server, portal, 'GET', 'Patient/$everything'), 200));
      expect(text).toContain(`answer-${label(d)}`);
      expect(text).toContain(`answer-${label(e)}`);
    }
    // The merge is in the audit log under each person's pseudonym.
    for (const pseudonym of [sourcePseudonym, targetPseudonym]) {
      const found = ok(
        await call<Bundle>(
          server,
          staff,
          'GET',
          `AuditEvent?patient:identifier=${encodeURIComponent(`${registryPseudonymSystem}|${pseudonym}`)}&_count=100`,
        ),
        200,
      );
      const merges = (found.entry ?? [])
        .map((entry) => entry.resource as AuditEvent)
        .filter((event) =>
          event.subtype?.some((s) => s.system === AUDIT_SYSTEMS.operation && s.code === '$merge'),
        );
      expect(merges.length).toBeGreaterThanOrEqual(1);
    }
    // Merging again finds no source person.
    expect(
      (
        await call(
          server,
          staff,
          'POST',
          'Patient/$merge',
          mergeParameters(byId('source', pd), byId('target', pe)),
        )
      ).status,
    ).toBe(404);
  });

  test('a clinic writing about the merged person by the old id reaches the target', async () => {
    const pe = await patientOf(e);
    const reply = ok(
      await call<{ subject?: { reference?: string } }>(
        server,
        clinicA,
        'POST',
        'Condition',
        condition('after-merge', 'after-merge', { identifier: { system: FNR_SYSTEM, value: d } }),
        { prefer: 'return=representation' },
      ),
      201,
    );
    expect(reply.subject?.reference).toBe(`Patient/${pe?.id}`);
  });
});
