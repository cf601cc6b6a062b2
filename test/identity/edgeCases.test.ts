import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {
  Address,
  Bundle,
  BundleEntry,
  Encounter,
  EpisodeOfCare,
  Parameters,
  Patient,
} from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { Pseudonymiser } from '../../src/identity/pseudonym';
import { SearchTranslator } from '../../src/identity/searchTranslation';
import { MemoryVaultAuditSink } from '../../src/identity/vault/audit';
import { IdentityVault } from '../../src/identity/vault/IdentityVault';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { call, reservation, type Reply } from '../consent/fixtures';
import { bytesOf, storeFiles } from '../helpers/files';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * Edge cases of identity through real HTTP: a person sent again keeps what is known; a write that fails
 * leaves no vault entry, alias or Patient behind; linking aliases erases the retired Patient from the
 * store files; researchers cannot search by national id.
 */
const random = seededRandom(1503);
const FNR = preferredSystem.fnr;
const DNR = preferredSystem.dnr;
const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
const MUNICIPALITY = 'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode';
const KOMMUNENUMMER =
  'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle';
const REFERRAL_DATE = 'https://norpain.no/fhir/StructureDefinition/referral-date';

let server: TestServer;
let clinicA: string;
let clinicB: string;
let staff: string;

beforeAll(async () => {
  server = await startTestServer();
  clinicA = await server.token('clinic', { org: '999001' });
  clinicB = await server.token('clinic', { org: '999002' });
  staff = await server.token('registry-admin');
});
afterAll(async () => {
  await server.stop();
});

const fnr = () => syntheticNationalId('fnr', { random });
const dnr = () => syntheticNationalId('dnr', { random });

function ok<T>(reply: Reply<T>, status = 201): T {
  if (reply.status !== status) {
    throw new Error(`expected ${status}, got ${reply.status}: ${reply.text}`);
  }
  return reply.body;
}

function encounter(subject: Encounter['subject']): Encounter {
  return {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject,
  };
}

function episode(patient: EpisodeOfCare['patient'], unit = '999001'): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    extension: [{ url: REFERRAL_DATE, valueDate: '2024-01-15' }],
    status: 'active',
    patient,
    managingOrganization: { identifier: { system: RESH, value: unit } },
    period: { start: '2024-03-04' },
  };
}

/** Every file the clinical store wrote (database, WAL, shared memory), as one buffer. */
function storeBytes(): Buffer {
  const files = storeFiles(server.dataDir);
  expect(files.length).toBeGreaterThan(0);
  return Buffer.concat(files.map(bytesOf));
}

async function patientFor(system: string, value: string): Promise<Patient[]> {
  const found = ok(
    await call<Bundle>(
      server,
      staff,
      'GET',
      `Patient?identifier=${encodeURIComponent(`${system}|${value}`)}`,
    ),
    200,
  );
  return (found.entry ?? []).map((e) => e.resource as Patient);
}

/** Reserving reports whether the vault knew the person and what the store held: the way to observe both. */
async function reserve(value: string, system: string = FNR): Promise<Parameters> {
  const reply = await call<Parameters>(server, staff, 'POST', 'Consent', {
    ...reservation(value, { channel: 'letter', system }),
  });
  if (reply.status !== 201 && reply.status !== 200) {
    throw new Error(`reservation failed: ${reply.status} ${reply.text}`);
  }
  return reply.body;
}

const part = (receipt: Parameters, name: string) => receipt.parameter?.find((p) => p.name === name);

describe('a person sent again', () => {
  test('a second clinic without birth date, gender or address keeps them; a value it carries wins', async () => {
    const id = fnr();
    const first = ok(
      await call<Patient>(server, clinicA, 'POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ system: FNR, value: id }],
        gender: 'female',
        birthDate: '1975-03-09',
        address: [
          {
            line: ['Fjellveien 3'],
            district: 'Bergen',
            _district: {
              extension: [{ url: MUNICIPALITY, valueCoding: { system: KOMMUNENUMMER, code: '4601' } }],
            },
          } as Address, // the municipality code sits on the primitive (FHIR JSON `_district`)
        ],
      }),
    );
    expect(first.birthDate).toBe('1975-03');
    const second = await call<Patient>(server, clinicB, 'POST', 'Patient', {
      resourceType: 'Patient',
      identifier: [{ system: FNR, value: id }],
      name: [{ family: 'Testesen' }],
    });
    expect([200, 201]).toContain(second.status);
    const stored = await call<Patient>(server, staff, 'GET', `Patient/${first.id}`);
    expect(stored.body).toMatchObject({
      id: first.id,
      gender: 'female',
      birthDate: '1975-03',
      address: [{ district: 'Bergen' }],
    });
    expect(JSON.stringify(stored.body)).not.toContain('Fjellveien');
    expect(JSON.stringify(stored.body)).not.toContain('Testesen');

    // A newer value for an element wins; what the message lacks is still kept.
    ok(
      await call<Patient>(server, clinicB, 'POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ system: FNR, value: id }],
        gender: 'other',
      }),
      200,
    );
    const after = ok(await call<Patient>(server, staff, 'GET', `Patient/${first.id}`), 200);
    expect(after).toMatchObject({ gender: 'other', birthDate: '1975-03', address: [{ district: 'Bergen' }] });
    // Both clinics still see the person they sent.
    ok(await call<Patient>(server, clinicA, 'GET', `Patient/${first.id}`), 200);
    ok(await call<Patient>(server, clinicB, 'GET', `Patient/${first.id}`), 200);
  });
});

describe('a write that fails leaves no identity behind', () => {
  test('a transaction refused by the store (412) leaves no vault entry for its new person', async () => {
    const id = fnr();
    const anchor = ok(
      await call<Encounter>(
        server,
        clinicA,
        'POST',
        'Encounter',
        encounter({ identifier: { system: FNR, value: fnr() } }),
      ),
    );
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:6d1c9a52-7a4e-4a0e-9a51-000000000001',
          resource: { resourceType: 'Patient', identifier: [{ system: FNR, value: id }], gender: 'male' },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            ...encounter({ reference: 'urn:uuid:6d1c9a52-7a4e-4a0e-9a51-000000000001' }),
            id: anchor.id,
          },
          request: { method: 'PUT', url: `Encounter/${anchor.id}`, ifMatch: 'W/"99"' },
        },
      ] as BundleEntry[],
    };
    const reply = await call(server, clinicA, 'POST', '', bundle);
    expect(reply.status).toBe(412);
    expect(await patientFor(FNR, id)).toEqual([]);
    const receipt = await reserve(id);
    expect(part(receipt, 'identityDeleted')?.valueBoolean).toBe(false);
  });

  test('a single write naming a new person by national id that fails creates no Patient and no vault entry', async () => {
    const id = fnr();
    const anchor = ok(
      await call<Encounter>(
        server,
        clinicA,
        'POST',
        'Encounter',
        encounter({ identifier: { system: FNR, value: fnr() } }),
      ),
    );
    const reply = await call(
      server,
      clinicA,
      'PUT',
      `Encounter/${anchor.id}`,
      { ...encounter({ identifier: { system: FNR, value: id } }), id: anchor.id },
      { 'if-match': 'W/"99"' },
    );
    expect(reply.status).toBe(412);
    expect(await patientFor(FNR, id)).toEqual([]);
    const receipt = await reserve(id);
    expect(part(receipt, 'identityDeleted')?.valueBoolean).toBe(false);
    expect(part(receipt, 'versionsErased')?.valueInteger ?? 0).toBe(0);
  });

  test('an alias link in a failed transaction is not made: the new id stays unknown', async () => {
    const f = fnr();
    const d = dnr();
    const newD = dnr();
    const pf = ok(
      await call<Patient>(server, clinicA, 'POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ system: FNR, value: f }],
      }),
    );
    const pd = ok(
      await call<Patient>(server, clinicA, 'POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ system: DNR, value: d }],
      }),
    );
    const anchor = ok(
      await call<Encounter>(
        server,
        clinicA,
        'POST',
        'Encounter',
        encounter({ reference: `Patient/${pd.id}` }),
      ),
    );
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:6d1c9a52-7a4e-4a0e-9a51-000000000002',
          resource: {
            resourceType: 'Patient',
            // A new id of a known person is linked automatically, but only if the write is stored.
            identifier: [
              { system: FNR, value: f },
              { system: DNR, value: newD },
            ],
          },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            ...encounter({ reference: 'urn:uuid:6d1c9a52-7a4e-4a0e-9a51-000000000002' }),
            id: anchor.id,
          },
          request: { method: 'PUT', url: `Encounter/${anchor.id}`, ifMatch: 'W/"99"' },
        },
      ] as BundleEntry[],
    };
    expect((await call(server, clinicA, 'POST', '', bundle)).status).toBe(412);
    expect((await patientFor(FNR, f)).map((p) => p.id)).toEqual([pf.id]);
    expect((await patientFor(DNR, d)).map((p) => p.id)).toEqual([pd.id]);
    expect(await patientFor(DNR, newD)).toEqual([]);
    const still = ok(await call<Encounter>(server, staff, 'GET', `Encounter/${anchor.id}`), 200);
    expect(still.subject?.reference).toBe(`Patient/${pd.id}`);
  });
});

describe('a D-number and an FNR registered as two persons', () => {
  test('a write naming both is refused (409); staff $merge moves the data to the target and erases every byte of the retired Patient; a reservation then erases all', async () => {
    const f = fnr();
    const d = dnr();
    const pf = ok(
      await call<Patient>(server, clinicA, 'POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ system: FNR, value: f }],
        gender: 'female',
      }),
    );
    const pd = ok(
      await call<Patient>(server, clinicA, 'POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ system: DNR, value: d }],
        birthDate: '1980-02-03',
      }),
    );
    // A second version of the D-number Patient, so there is history to erase.
    ok(
      await call<Patient>(server, clinicA, 'POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ system: DNR, value: d }],
        gender: 'female',
      }),
      200,
    );
    const retiredPseudonym = pd.identifier?.[0].value as string;
    const survivingPseudonym = pf.identifier?.[0].value as string;
    expect(retiredPseudonym).not.toBe(survivingPseudonym);
    const episodeD = ok(
      await call<EpisodeOfCare>(
        server,
        clinicA,
        'POST',
        'EpisodeOfCare',
        episode({ reference: `Patient/${pd.id}` }),
      ),
    );
    const encounterD = ok(
      await call<Encounter>(
        server,
        clinicA,
        'POST',
        'Encounter',
        encounter({ reference: `Patient/${pd.id}` }),
      ),
    );
    const encounterF = ok(
      await call<Encounter>(
        server,
        clinicA,
        'POST',
        'Encounter',
        encounter({ reference: `Patient/${pf.id}` }),
      ),
    );
    expect(storeBytes().includes(retiredPseudonym)).toBe(true);

    const both = await call(server, clinicA, 'POST', 'Patient', {
      resourceType: 'Patient',
      identifier: [
        { system: FNR, value: f },
        { system: DNR, value: d },
      ],
    });
    expect(both.status).toBe(409);
    expect((await patientFor(DNR, d)).map((p) => p.id)).toEqual([pd.id]);

    const merged = ok(
      await call<Parameters>(server, staff, 'POST', 'Patient/$merge', {
        resourceType: 'Parameters',
        parameter: [
          { name: 'source-patient-identifier', valueIdentifier: { system: DNR, value: d } },
          { name: 'target-patient', valueReference: { reference: `Patient/${pf.id}` } },
        ],
      }),
      200,
    );
    const linked = merged.parameter?.find((p) => p.name === 'result')?.resource as Patient;
    expect(linked.id).toBe(pf.id); // the target stays
    expect(linked.identifier?.[0].value).toBe(survivingPseudonym);
    // What the retired Patient knew is kept on the target.
    expect(linked).toMatchObject({ gender: 'female', birthDate: '1980-02' });
    expect(JSON.stringify(merged)).not.toContain(d);

    // The retired Patient is gone with every version; no byte of its pseudonym is left in the files.
    expect((await call(server, staff, 'GET', `Patient/${pd.id}`)).status).toBe(404);
    const history = await call<Bundle>(server, staff, 'GET', `Patient/${pd.id}/_history`);
    expect(history.status === 404 || (history.body.entry ?? []).length === 0).toBe(true);
    expect(storeBytes().includes(retiredPseudonym)).toBe(false);

    // The moved data survive, on the survivor, with their history.
    for (const moved of [episodeD, encounterD]) {
      const now = ok(
        await call<EpisodeOfCare | Encounter>(server, staff, 'GET', `${moved.resourceType}/${moved.id}`),
        200,
      );
      const subject = now.resourceType === 'EpisodeOfCare' ? now.patient : now.subject;
      expect(subject?.reference).toBe(`Patient/${pf.id}`);
      const history = ok(
        await call<Bundle>(server, staff, 'GET', `${moved.resourceType}/${moved.id}/_history`),
        200,
      );
      expect(history.entry?.length).toBe(2);
    }
    const search = ok(await call<Bundle>(server, staff, 'GET', `Encounter?subject=Patient/${pf.id}`), 200);
    expect((search.entry ?? []).map((e) => e.resource?.id).sort()).toEqual(
      [encounterD.id, encounterF.id].sort(),
    );
    expect((await patientFor(DNR, d)).map((p) => p.id)).toEqual([pf.id]);

    // Reserving by the D-number now erases the person entirely: nothing of either pseudonym remains.
    const receipt = await reserve(d, DNR);
    expect(part(receipt, 'identityDeleted')?.valueBoolean).toBe(true);
    expect(part(receipt, 'residual')?.valueInteger).toBe(0);
    const bytes = storeBytes();
    expect(bytes.includes(retiredPseudonym)).toBe(false);
    expect(bytes.includes(survivingPseudonym)).toBe(false);
    for (const gone of [encounterD, encounterF, episodeD]) {
      expect((await call(server, staff, 'GET', `${gone.resourceType}/${gone.id}`)).status).toBe(404);
    }
  });
});

describe('researchers and national ids', () => {
  test('a research token searching by national id gets 403 naming the parameter, valid number or not', async () => {
    const researcher = await server.token('researcher');
    for (const id of [fnr(), '11835066692']) {
      const url = `Questionnaire?identifier=${encodeURIComponent(`${FNR}|${id}`)}`;
      const reply = await call(server, researcher, 'GET', url);
      expect(reply.status).toBe(403);
      expect(reply.text).toContain('cannot search by national id');
      expect(reply.text).not.toContain(id);
      // Others get the usual 400: a Questionnaire is not found by a person's id.
      expect((await call(server, staff, 'GET', url)).status).toBe(400);
    }
    // Patient and clinical types are closed to research tokens before translation (src/auth).
    const patients = `Patient?identifier=${encodeURIComponent(`${FNR}|${fnr()}`)}`;
    expect((await call(server, researcher, 'GET', patients)).status).toBe(403);
    expect((await call(server, staff, 'GET', patients)).status).toBe(200);
  });

  test.each([
    ['Patient', 'identifier'],
    ['Encounter', 'subject:identifier'],
    ['EpisodeOfCare', 'patient.identifier'],
    ['QuestionnaireResponse', 'subject:Patient.identifier'],
  ])('the translator refuses %s?%s=<national id> for researchers, before any lookup', (type, name) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-translate-'));
    const pseudonymiser = new Pseudonymiser({ current: 1, keys: new Map([[1, randomBytes(32)]]) });
    const vault = IdentityVault.open({
      file: IdentityVault.defaultFile(dir),
      vaultKey: randomBytes(32),
      pseudonymiser,
      audit: new MemoryVaultAuditSink(),
    });
    try {
      const translator = new SearchTranslator({ vault, pseudonymiser, production: false });
      const params = new URLSearchParams([[name, `${FNR}|${fnr()}`]]);
      expect(() => translator.params(type, params, { role: 'researcher' })).toThrow(
        expect.objectContaining({ status: 403 }) as Error,
      );
      expect(translator.params(type, params, { role: 'registry-admin' }).toString()).not.toContain(FNR);
    } finally {
      vault.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
