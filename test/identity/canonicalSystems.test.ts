import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Condition, Identifier, Parameters, Patient } from '@medplum/fhirtypes';
import { hnrTypeCode, hnrTypeSystem } from '../../src/identity/nationalId';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { CHANNEL, FNR_SYSTEM, RESH, call, ok, condition, people, reservation } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * Re-inclusion and split persons through identifier spellings (DESIGN §3.2, §4), through real HTTP:
 * identifier systems are compared in canonical form (`urn:oid:` and a URL's host are case-insensitive)
 * and an H-number's assigner has one canonical key, so no spelling brings a reserved person back or
 * makes a second person; a staff `$correct` passes the same exclusion and pseudonymisation as any write.
 */
let server: TestServer;
let clinic: string;
let staff: string;
const random = seededRandom(7401);

const SPELLINGS = [
  'URN:OID:2.16.578.1.12.4.1.4.1',
  'urn:OID:2.16.578.1.12.4.1.4.1',
  'Urn:Oid:2.16.578.1.12.4.1.4.1',
  'HTTP://HL7.NO/fhir/NamingSystem/FNR',
];

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic', { org: '999001' });
  staff = await server.token('registry-admin');
});
afterAll(async () => {
  await server.stop();
});

async function reserve(fnr: string): Promise<void> {
  ok(
    await call(server, staff, 'POST', 'Consent', {
      ...reservation(fnr),
      extension: [{ url: CHANNEL, valueCode: 'letter' }],
    }),
    201,
  );
}

async function registered(identifier: Identifier[]): Promise<Patient> {
  const reply = await call<Patient>(
    server,
    clinic,
    'POST',
    'Patient',
    { resourceType: 'Patient', identifier, birthDate: '1980-01-15' },
    { prefer: 'return=representation' },
  );
  if (reply.status !== 200 && reply.status !== 201) {
    throw new Error(`expected 200 or 201, got ${reply.status}: ${reply.text}`);
  }
  return reply.body;
}

/** Every byte under DATA_DIR (stores, audit log, register, vault), to look for a national id in plain. */
function dataBytes(): string {
  const files = fs.readdirSync(server.dataDir, { recursive: true, withFileTypes: true });
  return files
    .filter((entry) => entry.isFile())
    .map((entry) => fs.readFileSync(path.join(entry.parentPath, entry.name)).toString('latin1'))
    .join('\n');
}

function hnr(value: string, assigner: Identifier['assigner'], typeSystem = hnrTypeSystem): Identifier {
  return {
    type: { coding: [{ system: typeSystem, code: hnrTypeCode }] },
    system: 'urn:oid:2.16.578.1.12.4.1.2.99999',
    value,
    assigner,
  };
}

describe('identifier systems in canonical form', () => {
  test('the same FNR under any spelling of its system is one person, found by any spelling', async () => {
    const [fnr] = people(7402, 1);
    const first = await registered([{ system: FNR_SYSTEM, value: fnr }]);
    for (const system of SPELLINGS) {
      expect((await registered([{ system, value: fnr }])).id).toBe(first.id);
      const found = ok(
        await call<Bundle>(
          server,
          staff,
          'GET',
          `Patient?identifier=${encodeURIComponent(`${system}|${fnr}`)}`,
        ),
        200,
      );
      expect(found.entry?.map((entry) => entry.resource?.id)).toEqual([first.id]);
    }
    expect(dataBytes()).not.toContain(fnr);
  });

  test('no spelling of the system writes about a reserved person: Patient, reference by identifier, conditional reference', async () => {
    const [fnr] = people(7403, 1);
    await registered([{ system: FNR_SYSTEM, value: fnr }]);
    await reserve(fnr);
    for (const system of SPELLINGS) {
      const attempts = [
        await call(server, clinic, 'POST', 'Patient', {
          resourceType: 'Patient',
          identifier: [{ system, value: fnr }],
        }),
        await call(
          server,
          clinic,
          'POST',
          'Condition',
          condition('x', 'x', { identifier: { system, value: fnr } }),
        ),
        await call(
          server,
          clinic,
          'POST',
          'Condition',
          condition('x', 'x', { reference: `Patient?identifier=${encodeURIComponent(system)}|${fnr}` }),
        ),
      ];
      for (const reply of attempts) {
        expect(reply.status).toBe(403);
        expect(reply.text).not.toContain(fnr);
      }
    }
    const left = ok(await call<Bundle>(server, staff, 'GET', 'Condition?_summary=count'), 200);
    expect(left.total).toBe(0);
  });
});

describe('H-numbers whose assigner is written differently', () => {
  const value = () => syntheticNationalId('hnr', { random });
  const variants: Identifier['assigner'][] = [
    { identifier: { system: RESH, value: '4001031' } },
    { identifier: { system: RESH.toUpperCase(), value: ' 4001031 ' } },
    { identifier: { system: 'urn:OID:2.16.578.1.12.4.1.4.102', value: '4001031' } },
  ];

  test('are one person, also when the type coding system is written in upper case', async () => {
    const h = value();
    const first = await registered([hnr(h, variants[0])]);
    for (const assigner of variants) {
      expect((await registered([hnr(h, assigner)])).id).toBe(first.id);
      expect((await registered([hnr(h, assigner, hnrTypeSystem.toUpperCase())])).id).toBe(first.id);
    }
    const named = value();
    const byName = await registered([hnr(named, { display: 'St. Olavs hospital' })]);
    expect((await registered([hnr(named, { display: '  st. olavs   HOSPITAL ' })])).id).toBe(byName.id);
  });

  test('cannot bring a reserved person back', async () => {
    const [fnr] = people(7404, 1);
    const h = value();
    await registered([{ system: FNR_SYSTEM, value: fnr }, hnr(h, variants[0])]);
    await reserve(fnr);
    for (const assigner of variants) {
      for (const typeSystem of [hnrTypeSystem, hnrTypeSystem.toUpperCase()]) {
        const reply = await call(server, clinic, 'POST', 'Patient', {
          resourceType: 'Patient',
          identifier: [hnr(h, assigner, typeSystem)],
        });
        expect(reply.status).toBe(403);
      }
    }
  });
});

describe('a staff $correct', () => {
  async function stored(fnr: string): Promise<Condition> {
    const patient = await registered([{ system: FNR_SYSTEM, value: fnr }]);
    return ok(
      await call<Condition>(
        server,
        clinic,
        'POST',
        'Condition',
        condition('corrected', 'before', { reference: `Patient/${patient.id}` }),
        { prefer: 'return=representation' },
      ),
      201,
    );
  }

  function correction(resource: Condition): Parameters {
    return {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource },
        { name: 'reason', valueString: 'wrong person' },
      ],
    };
  }

  test('cannot move data to a reserved person, by any spelling or by the erased Patient', async () => {
    const [other, reserved] = people(7405, 2);
    const target = await stored(other);
    const reservedPatient = await registered([{ system: FNR_SYSTEM, value: reserved }]);
    await reserve(reserved);
    const subjects: Condition['subject'][] = [
      ...[FNR_SYSTEM, ...SPELLINGS].map((system) => ({ identifier: { system, value: reserved } })),
      { reference: `Patient?identifier=${SPELLINGS[0]}|${reserved}` },
      { reference: `Patient/${reservedPatient.id}` },
    ];
    for (const subject of subjects) {
      const reply = await call(
        server,
        staff,
        'POST',
        `Condition/${target.id}/$correct`,
        correction({ ...target, subject }),
      );
      expect(reply.status).toBe(403);
      expect(reply.text).not.toContain(reserved);
    }
    const now = ok(await call<Condition>(server, staff, 'GET', `Condition/${target.id}`), 200);
    expect(now.meta?.versionId).toBe(target.meta?.versionId);
    expect(now.subject).toEqual(target.subject);
  });

  test('stores no national id, whatever element the correction puts it in', async () => {
    const [fnr] = people(7406, 1);
    const target = await stored(fnr);
    const reply = await call<Parameters>(
      server,
      staff,
      'POST',
      `Condition/${target.id}/$correct`,
      correction({
        ...target,
        code: { ...target.code, text: `the patient ${fnr} said` },
        note: [{ text: `see ${fnr.slice(0, 6)} ${fnr.slice(6)}` }],
        identifier: [{ system: SPELLINGS[0], value: fnr }],
      }),
    );
    expect([200, 422]).toContain(reply.status);
    expect(reply.text).not.toContain(fnr);
    expect(dataBytes()).not.toContain(fnr);
    expect(dataBytes()).not.toContain(`${fnr.slice(0, 6)} ${fnr.slice(6)}`);
  });
});
