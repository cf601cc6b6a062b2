import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import type {
  Address,
  Bundle,
  Encounter,
  EpisodeOfCare,
  Patient,
  Practitioner,
  OperationOutcomeIssue,
  QuestionnaireResponse,
  Resource,
} from '@medplum/fhirtypes';
import type { Principal } from '../../src/auth/principal';
import { FhirError } from '../../src/fhir/outcomes';
import { preferredSystem } from '../../src/identity/nationalId';
import { Pseudonymiser, registryPseudonymSystem } from '../../src/identity/pseudonym';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { MemoryVaultAuditSink } from '../../src/identity/vault/audit';
import { IdentityVault } from '../../src/identity/vault/IdentityVault';
import { persistWrite, type PersistOutcome } from '../../src/ingest/persist';
import { createPseudonymiseStage } from '../../src/ingest/pseudonymise';
import type { WriteGuard } from '../../src/ingest/exclude';
import type { IngestContext, Write } from '../../src/ingest/write';
import { EmbeddedStore } from '../../src/store/embedded';

const random = seededRandom(11);
const FNR = preferredSystem.fnr;
const DNR = preferredSystem.dnr;
const MUNICIPALITY = 'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode';
const KOMMUNENUMMER =
  'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle';
const EPISODE_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.2.4001031.episode';
const ctx = {
  principal: { role: 'clinic', clientId: 'dips', scopes: [] } as Principal,
  requestId: 'r1',
  base: 'http://localhost/fhir',
};

let dir: string;
let store: EmbeddedStore;
let vault: IdentityVault;
let pseudonymise: WriteGuard;
let pseudonymiser: Pseudonymiser;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-pseudo-'));
  store = EmbeddedStore.open(path.join(dir, 'clinical', 'store.sqlite'));
  pseudonymiser = new Pseudonymiser({ current: 1, keys: new Map([[1, randomBytes(32)]]) });
  vault = IdentityVault.open({
    file: IdentityVault.defaultFile(dir),
    vaultKey: randomBytes(32),
    pseudonymiser,
    audit: new MemoryVaultAuditSink(),
  });
  pseudonymise = createPseudonymiseStage({ vault, pseudonymiser, store, production: false });
});

afterEach(async () => {
  vault.close();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The stage with persist in the middle, as in the pipeline. */
async function ingest(write: Write): Promise<PersistOutcome> {
  return pseudonymise.guard(write, ctx, (written) => persistWrite(store, written));
}

/** The stage alone: the write as it would be persisted (identity changes kept as if it had been). */
function stage(write: Write, context: IngestContext): Promise<Write> {
  return pseudonymise.guard(write, context, async (written) => written);
}

function single(resource: Resource, extra: Partial<Write['entries'][0]> = {}): Write {
  return {
    transaction: false,
    entries: [{ method: 'POST', resourceType: resource.resourceType, resource, ...extra }],
  };
}

function fullPatient(fnr: string, extra: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    id: 'dips-123',
    text: {
      status: 'generated',
      div: '<div xmlns="http://www.w3.org/1999/xhtml">Kari Nordmann 98765432</div>',
    },
    identifier: [
      { system: FNR, value: fnr },
      { system: 'urn:oid:2.16.578.1.12.4.1.2.4001031', value: 'MRN-777' },
    ],
    name: [{ family: 'Nordmann', given: ['Kari'] }],
    telecom: [{ system: 'phone', value: '98765432' }],
    gender: 'female',
    birthDate: '1980-01-15',
    address: [
      {
        line: ['Storgata 1'],
        postalCode: '7030',
        city: 'Trondheim',
        district: 'Trondheim',
        _district: {
          extension: [{ url: MUNICIPALITY, valueCoding: { system: KOMMUNENUMMER, code: '5001' } }],
        },
        country: 'NO',
      } as Address,
    ],
    photo: [{ contentType: 'image/png', data: 'aGVsbG8=' }],
    contact: [
      { name: { family: 'Nordmann', given: ['Ola'] }, telecom: [{ system: 'phone', value: '11223344' }] },
    ],
    managingOrganization: { reference: 'Organization/x', display: 'St. Olavs' },
    ...extra,
  };
}

const storeFiles = (): string[] =>
  fs
    .readdirSync(path.join(dir, 'clinical'))
    .filter((f) => f.startsWith('store.sqlite'))
    .map((f) => path.join(dir, 'clinical', f));

const stored = async (): Promise<Resource[]> => {
  const all: Resource[] = [];
  for (const type of [
    'Patient',
    'EpisodeOfCare',
    'Encounter',
    'QuestionnaireResponse',
    'Practitioner',
  ] as const) {
    all.push(...(await store.search(parseSearchRequest(`${type}?_count=1000`))).matches);
  }
  return all;
};

describe('pseudonymise stage', () => {
  test('a Patient becomes the pseudonymous Patient: pseudonym, gender, birth month, municipality only', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const outcome = await ingest(single(fullPatient(fnr)));
    expect(outcome.kind).toBe('resource');
    const patient = (outcome as { resource: Patient }).resource;
    const person = vault.find({ kind: 'fnr', value: fnr, synthetic: true });
    expect(patient.id).toBe(person?.patientId);
    expect(patient).toMatchObject({
      resourceType: 'Patient',
      identifier: [{ system: registryPseudonymSystem, value: person?.pseudonym }],
      gender: 'female',
      birthDate: '1980-01',
      address: [
        {
          district: 'Trondheim',
          _district: {
            extension: [{ url: MUNICIPALITY, valueCoding: { system: KOMMUNENUMMER, code: '5001' } }],
          },
          country: 'NO',
        },
      ],
    });
    expect(Object.keys(patient).sort()).toEqual([
      'address',
      'birthDate',
      'gender',
      'id',
      'identifier',
      'meta',
      'resourceType',
    ]);
    const json = JSON.stringify(await stored());
    for (const secret of [
      fnr,
      'Nordmann',
      'Kari',
      '98765432',
      '11223344',
      'Storgata',
      '7030',
      'MRN-777',
      'dips-123',
    ]) {
      expect(json).not.toContain(secret);
    }
  });

  test('the same person from two clinics is one Patient, created once', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const a = (await ingest(single(fullPatient(fnr)))) as { resource: Patient; created: boolean };
    const b = (await ingest(
      single(fullPatient(fnr, { id: 'other-clinic-9' }), { method: 'PUT', id: 'other-clinic-9' }),
    )) as { resource: Patient; created: boolean };
    expect(a.created).toBe(true);
    expect(b.resource.id).toBe(a.resource.id);
    expect(b.created).toBe(false);
    expect((await store.search(parseSearchRequest('Patient'))).matches).toHaveLength(1);
  });

  test('an invalid national id is a 422 naming it, and nothing is stored', async () => {
    const write = single(fullPatient('11835066692'));
    await expect(stage(write, ctx)).rejects.toMatchObject({
      status: 422,
      outcome: { issue: [{ expression: ['Patient.identifier[0]'] }] },
    });
    const error = await Promise.resolve()
      .then(() => stage(write, ctx))
      .catch((e: FhirError) => e);
    expect(JSON.stringify((error as FhirError).outcome)).not.toContain('1183506669');
    expect(vault.count()).toBe(0);
    expect(await stored()).toEqual([]);
  });

  test('a Patient without a national id is refused', async () => {
    await expect(
      stage(single({ resourceType: 'Patient', name: [{ family: 'X' }] }), ctx),
    ).rejects.toMatchObject({
      status: 422,
    });
  });

  test('a transaction: urn:uuid and literal references point at the pseudonymous Patient; free text removed', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const bundleWrite: Write = {
      transaction: true,
      entries: [
        {
          method: 'POST',
          resourceType: 'Patient',
          fullUrl: 'urn:uuid:0b1c7f4e-0000-4000-8000-000000000001',
          resource: fullPatient(fnr),
        },
        {
          method: 'POST',
          resourceType: 'EpisodeOfCare',
          fullUrl: 'urn:uuid:0b1c7f4e-0000-4000-8000-000000000002',
          resource: {
            resourceType: 'EpisodeOfCare',
            status: 'active',
            identifier: [{ system: EPISODE_SYSTEM, value: 'EP-2024-001' }],
            patient: { reference: 'urn:uuid:0b1c7f4e-0000-4000-8000-000000000001', display: 'Kari Nordmann' },
            text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Kari</div>' },
          },
        },
        {
          method: 'POST',
          resourceType: 'QuestionnaireResponse',
          fullUrl: 'urn:uuid:0b1c7f4e-0000-4000-8000-000000000003',
          resource: {
            resourceType: 'QuestionnaireResponse',
            status: 'completed',
            subject: { reference: 'Patient/dips-123' },
            author: { reference: 'Practitioner/p1', display: 'Dr. Hansen' },
            item: [
              { linkId: 'free', answer: [{ valueString: `Mitt fødselsnummer er ${fnr}, ring 98765432` }] },
            ],
          },
        },
      ],
    };
    const outcome = (await ingest(bundleWrite)) as { bundle: Bundle; notStored?: OperationOutcomeIssue[][] };
    expect(outcome.bundle.entry?.map((e) => e.response?.status?.slice(0, 3))).toEqual(['201', '201', '201']);
    const person = vault.find({ kind: 'fnr', value: fnr, synthetic: true });
    const episode = (await store.search<EpisodeOfCare>(parseSearchRequest('EpisodeOfCare'))).matches[0];
    expect(episode.patient).toEqual({ reference: `Patient/${person?.patientId}` });
    expect(episode.text).toBeUndefined();
    expect(episode.identifier?.[0].system).toBe(EPISODE_SYSTEM);
    expect(episode.identifier?.[0].value).toMatch(/^h1-/);
    const response = (await store.search<QuestionnaireResponse>(parseSearchRequest('QuestionnaireResponse')))
      .matches[0];
    expect(response.subject).toEqual({ reference: `Patient/${person?.patientId}` });
    // The data dictionary keeps no author and no free-text answers (src/dictionary): both are reported.
    expect(response.author).toBeUndefined();
    expect(response.item).toEqual([{ linkId: 'free' }]);
    expect(outcome.notStored?.[2].map((i) => i.expression?.[0])).toEqual([
      'Bundle.entry[2].resource.author',
      'Bundle.entry[2].resource.item.answer.valueString',
    ]);
    const json = JSON.stringify(await stored());
    for (const secret of [fnr, 'Nordmann', 'Kari', 'EP-2024-001', 'Hansen']) {
      expect(json).not.toContain(secret);
    }
  });

  test('conditional update by business identifier finds the hashed identifier', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const patient = (await ingest(single(fullPatient(fnr)))) as { resource: Patient };
    const episode = (status: EpisodeOfCare['status']): Write => ({
      transaction: false,
      entries: [
        {
          method: 'PUT',
          resourceType: 'EpisodeOfCare',
          conditionalQuery: `identifier=${encodeURIComponent(EPISODE_SYSTEM)}|EP-9`,
          resource: {
            resourceType: 'EpisodeOfCare',
            status,
            identifier: [{ system: EPISODE_SYSTEM, value: 'EP-9' }],
            patient: { identifier: { system: FNR, value: fnr } },
          },
        },
      ],
    });
    const first = (await ingest(episode('active'))) as { resource: EpisodeOfCare; created: boolean };
    const second = (await ingest(episode('finished'))) as { resource: EpisodeOfCare; created: boolean };
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.resource.id).toBe(first.resource.id);
    expect(second.resource.status).toBe('finished');
    expect(second.resource.patient).toEqual({ reference: `Patient/${patient.resource.id}` });
    // Conditional create (If-None-Exist) by the same identifier matches too.
    const again = (await ingest(
      single(episode('active').entries[0].resource as EpisodeOfCare, {
        ifNoneExist: `identifier=${EPISODE_SYSTEM}|EP-9`,
      }),
    )) as { resource: EpisodeOfCare; created: boolean };
    expect(again.created).toBe(false);
    expect(again.resource.id).toBe(first.resource.id);
  });

  test('a reference by national id to an unknown person creates the pseudonymous Patient', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const outcome = (await ingest(
      single({
        resourceType: 'Encounter',
        status: 'finished',
        class: { code: 'AMB' },
        subject: { identifier: { system: FNR, value: fnr }, display: 'Kari Nordmann' },
      } as Encounter),
    )) as { resource: Encounter };
    const person = vault.find({ kind: 'fnr', value: fnr, synthetic: true });
    expect(outcome.resource.subject).toEqual({ reference: `Patient/${person?.patientId}` });
    const patient = await store.read<Patient>('Patient', person?.patientId as string);
    expect(patient.identifier).toEqual([
      { use: 'official', system: registryPseudonymSystem, value: person?.pseudonym },
    ]);
  });

  test('conditional references and patient:identifier queries resolve to the pseudonymous Patient', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const patient = ((await ingest(single(fullPatient(fnr)))) as { resource: Patient }).resource;
    const encounter: Encounter = {
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      identifier: [{ system: 'urn:enc', value: 'E1' }],
      subject: { reference: `Patient?identifier=${FNR}|${fnr}` },
    };
    const created = (await ingest(single(encounter))) as { resource: Encounter };
    expect(created.resource.subject).toEqual({ reference: `Patient/${patient.id}` });
    const matched = (await ingest(
      single(encounter, { method: 'PUT', conditionalQuery: `subject:identifier=${FNR}|${fnr}` }),
    )) as { resource: Encounter; created: boolean };
    expect(matched.created).toBe(false);
    expect(matched.resource.id).toBe(created.resource.id);
  });

  test('an invalid national id in a reference is a 422 naming the reference', async () => {
    await expect(
      stage(
        single({
          resourceType: 'Encounter',
          status: 'finished',
          class: { code: 'AMB' },
          subject: { identifier: { system: FNR, value: '11835066692' } },
        } as Encounter),
        ctx,
      ),
    ).rejects.toMatchObject({
      status: 422,
      outcome: { issue: [{ expression: ['Encounter.subject.identifier[0]'] }] },
    });
  });

  test('a reference to a Patient the registry does not know is refused, naming the reference', async () => {
    const encounter = {
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { reference: 'Patient/epr-4711' },
    } as Encounter;
    await expect(stage(single(encounter), ctx)).rejects.toMatchObject({
      status: 422,
      outcome: { issue: [{ expression: ['Encounter.subject.reference'] }] },
    });
    const fnr = syntheticNationalId('fnr', { random });
    const bundle: Write = {
      transaction: true,
      entries: [
        { method: 'POST', resourceType: 'Patient', fullUrl: 'urn:uuid:1', resource: fullPatient(fnr) },
        { method: 'POST', resourceType: 'Encounter', fullUrl: 'urn:uuid:2', resource: encounter },
      ],
    };
    await expect(stage(bundle, ctx)).rejects.toMatchObject({
      status: 422,
      outcome: { issue: [{ expression: ['Bundle.entry[1].resource.subject.reference'] }] },
    });
  });

  test('a Patient whose D-number and FNR are two registered persons is refused (409); nothing moves', async () => {
    const dnr = syntheticNationalId('dnr', { random });
    const fnr = syntheticNationalId('fnr', { random });
    const encounterFor = (system: string, value: string): Encounter => ({
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { identifier: { system, value } },
    });
    const p1 = (
      (await ingest(single({ resourceType: 'Patient', identifier: [{ system: DNR, value: dnr }] }))) as {
        resource: Patient;
      }
    ).resource;
    const p2 = (
      (await ingest(single({ resourceType: 'Patient', identifier: [{ system: FNR, value: fnr }] }))) as {
        resource: Patient;
      }
    ).resource;
    expect(p1.id).not.toBe(p2.id);
    await ingest(single(encounterFor(DNR, dnr)));
    await ingest(single(encounterFor(FNR, fnr)));
    await expect(
      ingest(
        single({
          resourceType: 'Patient',
          identifier: [
            { system: FNR, value: fnr },
            { system: DNR, value: dnr, period: { end: '2020-01-01' } },
          ],
        }),
      ),
    ).rejects.toMatchObject({ status: 409, outcome: { issue: [{ expression: ['Patient.identifier'] }] } });
    // Both persons and their data stay as they were.
    expect((await store.read<Patient>('Patient', p1.id as string)).identifier?.[0].value).toBe(
      pseudonymiser.pseudonym(dnr),
    );
    expect((await store.read<Patient>('Patient', p2.id as string)).identifier?.[0].value).toBe(
      pseudonymiser.pseudonym(fnr),
    );
    const encounters = (await store.search<Encounter>(parseSearchRequest('Encounter'))).matches;
    expect(encounters.map((e) => e.subject?.reference).sort()).toEqual(
      [`Patient/${p1.id}`, `Patient/${p2.id}`].sort(),
    );
  });

  test('concurrent writes about one new person make one person and one Patient', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const writes = [
      single(fullPatient(fnr)),
      single({
        resourceType: 'Encounter',
        status: 'finished',
        class: { code: 'AMB' },
        subject: { identifier: { system: FNR, value: fnr } },
      } as Encounter),
      single(fullPatient(fnr, { gender: 'male' })),
    ];
    await Promise.all(writes.map((write) => ingest(write)));
    expect(vault.count()).toBe(1);
    const patients = (await store.search<Patient>(parseSearchRequest('Patient'))).matches;
    expect(patients).toHaveLength(1);
    const [encounter] = (await store.search<Encounter>(parseSearchRequest('Encounter'))).matches;
    expect(encounter.subject?.reference).toBe(`Patient/${patients[0].id}`);
  });

  test('a write that fails after the stage leaves no vault entry and no Patient it created', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const encounter = {
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { identifier: { system: FNR, value: fnr } },
    } as Encounter;
    await expect(
      pseudonymise.guard(single(encounter), ctx, async (written) => {
        // The minimal Patient the reference needs exists while the write runs...
        expect((await store.search(parseSearchRequest('Patient'))).matches).toHaveLength(1);
        expect(written.entries[0].resource).toMatchObject({ subject: { reference: expect.any(String) } });
        throw new Error('store refused');
      }),
    ).rejects.toThrow('store refused');
    // ...and is erased with every version when it fails; the vault never learnt the person.
    expect(vault.count()).toBe(0);
    expect(await stored()).toEqual([]);
    expect(
      Buffer.concat(storeFiles().map((f) => fs.readFileSync(f))).includes(pseudonymiser.pseudonym(fnr)),
    ).toBe(false);
  });

  test('health personnel are outside the registry; a national id outside Patient is refused; public identifiers kept', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    await expect(
      ingest(single({ resourceType: 'Practitioner', name: [{ family: 'Hansen' }] } as Practitioner)),
    ).rejects.toMatchObject({ status: 422 });
    const encounter = (identifier: Encounter['identifier']): Encounter => ({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      identifier,
      serviceProvider: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' } },
    });
    await expect(ingest(single(encounter([{ system: FNR, value: fnr }])))).rejects.toMatchObject({
      status: 422,
    });
    const kept = (await ingest(single(encounter(undefined)))) as { resource: Encounter };
    expect(kept.resource.serviceProvider).toEqual({
      identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' },
    });
  });

  test('a client-chosen id carrying a national id is refused', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    await expect(
      stage(
        single(
          {
            resourceType: 'Encounter',
            id: `enc-${fnr}`,
            status: 'finished',
            class: { code: 'AMB' },
          } as Encounter,
          { method: 'PUT', id: `enc-${fnr}` },
        ),
        ctx,
      ),
    ).rejects.toMatchObject({ status: 422 });
  });

  test('a conditional delete by national id deletes the pseudonymous Patient', async () => {
    const fnr = syntheticNationalId('fnr', { random });
    const patient = ((await ingest(single(fullPatient(fnr)))) as { resource: Patient }).resource;
    const write: Write = {
      transaction: false,
      entries: [{ method: 'DELETE', resourceType: 'Patient', conditionalQuery: `identifier=${FNR}|${fnr}` }],
    };
    const rewritten = await stage(write, ctx);
    expect(rewritten.entries[0].conditionalQuery).toBe(
      `identifier=${registryPseudonymSystem}|${patient.identifier?.[0].value}`,
    );
  });
});
