import { randomUUID } from 'node:crypto';
import { parseSearchRequest } from '@medplum/core';
import type {
  Bundle,
  Condition,
  Encounter,
  EpisodeOfCare,
  Observation,
  Organization,
  Patient,
  QuestionnaireResponse,
  Resource,
  RiskAssessment,
} from '@medplum/fhirtypes';
import type { FhirStore, SearchResult } from '../../src/store/FhirStore';
import { NORPAIN_PROFILES } from '../../src/validation/profiles';

/**
 * The FhirStore contract: FHIR semantics every store must have, whatever is behind it. Each test makes
 * its own data with values unique to this run, so the suite passes on a store that already holds data
 * (a shared HAPI server) as well as on a fresh one. Nothing here looks below the FhirStore interface.
 */
export function describeStoreContract(name: string, open: () => Promise<FhirStore>): void {
  describe(`FhirStore contract: ${name}`, () => {
    let store: FhirStore;
    /** Unique per run and per call: values no other test or earlier run can have. */
    const run = randomUUID().slice(0, 8);
    let counter = 0;
    const unique = (prefix = 'v'): string => `${prefix}-${run}-${++counter}`;

    const PSEUDONYM = 'https://norpain.no/fhir/sid/registry-pseudonym';
    const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
    const BASELINE = 'https://norpain.no/fhir/Questionnaire/norpain-baseline';

    const search = <T extends Resource>(query: string): Promise<SearchResult<T>> =>
      store.search<T>(parseSearchRequest<T>(query));
    const ids = (result: SearchResult): string[] => result.matches.map((r) => r.id as string).sort();

    async function patient(extra: Partial<Patient> = {}): Promise<Patient & { id: string }> {
      const { resource } = await store.create<Patient>({
        resourceType: 'Patient',
        identifier: [{ system: PSEUDONYM, value: `1-${unique('p')}` }],
        gender: 'female',
        birthDate: '1970-01-01',
        ...extra,
      });
      return resource as Patient & { id: string };
    }

    async function organization(): Promise<Organization & { id: string }> {
      const { resource } = await store.create<Organization>({
        resourceType: 'Organization',
        identifier: [{ system: RESH, value: unique('resh') }],
        name: 'Smerteklinikken, St. Olavs hospital',
        active: true,
      });
      return resource as Organization & { id: string };
    }

    function questionnaireResponse(subject: Patient, extra: Partial<QuestionnaireResponse> = {}) {
      const qr: QuestionnaireResponse = {
        resourceType: 'QuestionnaireResponse',
        status: 'completed',
        questionnaire: `${BASELINE}|1.0.0`,
        subject: { reference: `Patient/${subject.id}` },
        authored: '2024-03-05T10:15:00+01:00',
        item: [
          { linkId: 'bpi-worst', answer: [{ valueInteger: 7 }] },
          { linkId: 'bpi-least', answer: [{ valueInteger: 2 }] },
        ],
        ...extra,
      };
      return qr;
    }

    beforeAll(async () => {
      store = await open();
    });

    afterAll(async () => {
      await store.close();
    });

    test('ping resolves', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('create, read, vread, update, delete', () => {
      test('create assigns an id, versionId 1 and lastUpdated; read returns the same resource', async () => {
        const p = await patient({ name: [{ family: 'Nordmann', given: ['Kari'] }] });
        expect(p.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
        expect(p.meta?.versionId).toBe('1');
        expect(Number.isNaN(Date.parse(p.meta?.lastUpdated as string))).toBe(false);
        const read = await store.read<Patient>('Patient', p.id);
        expect(read.id).toBe(p.id);
        expect(read.name?.[0]?.family).toBe('Nordmann');
        expect(read.meta?.versionId).toBe('1');
      });

      test('server-assigned ids are unique', async () => {
        const a = await patient();
        const b = await patient();
        expect(a.id).not.toBe(b.id);
      });

      test('create ignores a client id and assigns its own', async () => {
        const { resource } = await store.create<Patient>({
          resourceType: 'Patient',
          id: unique('client'),
          identifier: [{ system: PSEUDONYM, value: unique('p') }],
        });
        expect(resource.meta?.versionId).toBe('1');
        await expect(store.read('Patient', resource.id as string)).resolves.toMatchObject({
          id: resource.id,
        });
      });

      test('reading an unknown id is 404', async () => {
        await expect(store.read('Patient', unique('missing'))).rejects.toMatchObject({ status: 404 });
      });

      test('update makes a new version; vread returns each version', async () => {
        const p = await patient({ gender: 'female' });
        const { resource: v2, created } = await store.update<Patient>({ ...p, gender: 'male' });
        expect(created).toBe(false);
        expect(v2.meta?.versionId).toBe('2');
        expect(v2.meta?.lastUpdated && v2.meta.lastUpdated >= (p.meta?.lastUpdated as string)).toBe(true);
        expect((await store.read<Patient>('Patient', p.id)).gender).toBe('male');
        expect((await store.vread<Patient>('Patient', p.id, '1')).gender).toBe('female');
        expect((await store.vread<Patient>('Patient', p.id, '2')).gender).toBe('male');
        await expect(store.vread('Patient', p.id, '3')).rejects.toMatchObject({ status: 404 });
      });

      test('update with ifMatch succeeds on the current version and is 412 on another', async () => {
        const p = await patient();
        await expect(store.update<Patient>({ ...p, gender: 'male' }, { ifMatch: '2' })).rejects.toMatchObject(
          {
            status: 412,
          },
        );
        expect((await store.read('Patient', p.id)).meta?.versionId).toBe('1');
        const { resource } = await store.update<Patient>({ ...p, gender: 'male' }, { ifMatch: '1' });
        expect(resource.meta?.versionId).toBe('2');
        await expect(
          store.update<Patient>({ ...p, gender: 'other' }, { ifMatch: '1' }),
        ).rejects.toMatchObject({
          status: 412,
        });
        expect((await store.read<Patient>('Patient', p.id)).gender).toBe('male');
      });

      test('update of an absent id creates it with the client id (update-as-create)', async () => {
        const id = unique('uac');
        const { resource, created } = await store.update<Patient>({
          resourceType: 'Patient',
          id,
          identifier: [{ system: PSEUDONYM, value: unique('p') }],
        });
        expect(created).toBe(true);
        expect(resource.id).toBe(id);
        expect(resource.meta?.versionId).toBe('1');
        expect((await store.read('Patient', id)).id).toBe(id);
      });

      test('delete is a new version: read is 410, old versions remain readable, history shows it', async () => {
        const p = await patient();
        await store.delete('Patient', p.id);
        await expect(store.read('Patient', p.id)).rejects.toMatchObject({ status: 410 });
        expect((await store.vread<Patient>('Patient', p.id, '1')).id).toBe(p.id);
        const history = await store.history('Patient', p.id);
        expect(history.entries.map((e) => e.method)).toEqual(['DELETE', 'POST']);
        expect(history.entries[0].resource).toBeUndefined();
        expect(history.entries[0].versionId).toBe('2');
        // Deleting again, or deleting what never existed, succeeds.
        await expect(store.delete('Patient', p.id)).resolves.toBeUndefined();
        await expect(store.delete('Patient', unique('never'))).resolves.toBeUndefined();
        // A deleted resource is not found by search.
        const value = p.identifier?.[0]?.value as string;
        expect((await search(`Patient?identifier=${PSEUDONYM}|${value}`)).matches).toHaveLength(0);
      });

      test('update after delete brings the resource back as a new version', async () => {
        const p = await patient();
        await store.delete('Patient', p.id);
        const { resource } = await store.update<Patient>({ ...p, gender: 'male' });
        expect(resource.meta?.versionId).toBe('3');
        expect((await store.read<Patient>('Patient', p.id)).gender).toBe('male');
      });
    });

    describe('conditional create and update', () => {
      test('create with ifNoneExist returns the existing match instead of creating', async () => {
        const value = unique('p');
        const first = await store.create<Patient>(
          { resourceType: 'Patient', identifier: [{ system: PSEUDONYM, value }] },
          { ifNoneExist: `identifier=${PSEUDONYM}|${value}` },
        );
        expect(first.created).toBe(true);
        const second = await store.create<Patient>(
          { resourceType: 'Patient', identifier: [{ system: PSEUDONYM, value }], gender: 'male' },
          { ifNoneExist: `identifier=${PSEUDONYM}|${value}` },
        );
        expect(second.created).toBe(false);
        expect(second.resource.id).toBe(first.resource.id);
        expect((await search(`Patient?identifier=${PSEUDONYM}|${value}`)).matches).toHaveLength(1);
      });

      test('create with ifNoneExist matching several resources is 412', async () => {
        const family = unique('Dobbel');
        await patient({ name: [{ family }] });
        await patient({ name: [{ family }] });
        await expect(
          store.create<Patient>(
            { resourceType: 'Patient', name: [{ family }] },
            { ifNoneExist: `name:exact=${family}` },
          ),
        ).rejects.toMatchObject({ status: 412 });
      });

      test('conditional update: no match creates, one match updates, several is 412', async () => {
        const value = unique('p');
        const query = `identifier=${PSEUDONYM}|${value}`;
        const created = await store.conditionalUpdate<Patient>(
          { resourceType: 'Patient', identifier: [{ system: PSEUDONYM, value }], gender: 'female' },
          query,
        );
        expect(created.created).toBe(true);
        const updated = await store.conditionalUpdate<Patient>(
          { resourceType: 'Patient', identifier: [{ system: PSEUDONYM, value }], gender: 'male' },
          query,
        );
        expect(updated.created).toBe(false);
        expect(updated.resource.id).toBe(created.resource.id);
        expect(updated.resource.meta?.versionId).toBe('2');

        const family = unique('Flere');
        await patient({ name: [{ family }] });
        await patient({ name: [{ family }] });
        await expect(
          store.conditionalUpdate<Patient>(
            { resourceType: 'Patient', name: [{ family }] },
            `name:exact=${family}`,
          ),
        ).rejects.toMatchObject({ status: 412 });
      });
    });

    describe('search: token', () => {
      test('system|code, |code, system| and code alone; comma is OR; repeated parameters are AND', async () => {
        const value = unique('tok');
        const withSystem = await patient({ identifier: [{ system: PSEUDONYM, value }] });
        const withoutSystem = await patient({ identifier: [{ value }] });
        expect(ids(await search(`Patient?identifier=${PSEUDONYM}|${value}`))).toEqual([withSystem.id]);
        expect(ids(await search(`Patient?identifier=|${value}`))).toEqual([withoutSystem.id]);
        expect(ids(await search(`Patient?identifier=${value}`))).toEqual(
          [withSystem.id, withoutSystem.id].sort(),
        );

        const otherSystem = `https://norpain.no/fhir/sid/${unique('sys')}`;
        const a = await patient({ identifier: [{ system: otherSystem, value: unique('x') }] });
        const b = await patient({ identifier: [{ system: otherSystem, value: unique('x') }] });
        expect(ids(await search(`Patient?identifier=${otherSystem}|`))).toEqual([a.id, b.id].sort());
        const aValue = a.identifier?.[0]?.value as string;
        const bValue = b.identifier?.[0]?.value as string;
        expect(
          ids(await search(`Patient?identifier=${otherSystem}|${aValue},${otherSystem}|${bValue}`)),
        ).toEqual([a.id, b.id].sort());
        expect(
          ids(await search(`Patient?identifier=${otherSystem}|&identifier=${otherSystem}|${aValue}`)),
        ).toEqual([a.id]);
      });

      test('code and boolean tokens; :not and :missing', async () => {
        const system = `https://norpain.no/fhir/sid/${unique('sys')}`;
        const female = await patient({
          identifier: [{ system, value: '1' }],
          gender: 'female',
          active: true,
        });
        const male = await patient({ identifier: [{ system, value: '2' }], gender: 'male' });
        const unknown = await patient({ identifier: [{ system, value: '3' }], gender: undefined });
        const scope = `identifier=${system}|`;
        expect(ids(await search(`Patient?${scope}&gender=male`))).toEqual([male.id]);
        expect(ids(await search(`Patient?${scope}&gender=male,female`))).toEqual([female.id, male.id].sort());
        expect(ids(await search(`Patient?${scope}&gender:not=male`))).toEqual([female.id, unknown.id].sort());
        expect(ids(await search(`Patient?${scope}&gender:missing=true`))).toEqual([unknown.id]);
        expect(ids(await search(`Patient?${scope}&gender:missing=false`))).toEqual(
          [female.id, male.id].sort(),
        );
        expect(ids(await search(`Patient?${scope}&active=true`))).toEqual([female.id]);
      });

      test('CodeableConcept tokens (Condition.code)', async () => {
        const p = await patient();
        const code = unique('R52');
        const { resource: c } = await store.create<Condition>({
          resourceType: 'Condition',
          subject: { reference: `Patient/${p.id}` },
          code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code, display: 'Smerte' }] },
          clinicalStatus: {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }],
          },
        });
        expect(ids(await search(`Condition?code=urn:oid:2.16.578.1.12.4.1.1.7110|${code}`))).toEqual([c.id]);
        expect(ids(await search(`Condition?code=${code}&clinical-status=active`))).toEqual([c.id]);
        expect(ids(await search(`Condition?code=${code}&clinical-status=resolved`))).toEqual([]);
      });

      test('repeated parameters are AND across the values of one element (two codings)', async () => {
        const p = await patient();
        const [a, b] = [unique('A'), unique('B')];
        const { resource: c } = await store.create<Condition>({
          resourceType: 'Condition',
          subject: { reference: `Patient/${p.id}` },
          code: {
            coding: [
              { system: 'http://snomed.info/sct', code: a },
              { system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: b },
            ],
          },
        });
        expect(ids(await search(`Condition?code=${a}&code=${b}`))).toEqual([c.id]);
        expect(ids(await search(`Condition?code=${a}&code=${unique('C')}`))).toEqual([]);
        expect(ids(await search(`Condition?subject=Patient/${p.id}&code:not=${a}`))).toEqual([]);
      });
    });

    describe('search: string', () => {
      test('default is case-insensitive starts-with on any part of the name', async () => {
        const family = `Strand${run}`;
        const p = await patient({ name: [{ family, given: ['Ingrid', 'Marie'] }] });
        expect(ids(await search(`Patient?name=${family.toUpperCase()}`))).toEqual([p.id]);
        expect(ids(await search(`Patient?name=${family.slice(0, 9).toLowerCase()}`))).toContain(p.id);
        expect(ids(await search(`Patient?family=${family}&given=marie`))).toEqual([p.id]);
        expect(ids(await search(`Patient?family=${family}&given=ingr`))).toEqual([p.id]);
        expect(ids(await search(`Patient?family=${family}&given=arie`))).toEqual([]);
      });

      test('accents are ignored: é, ü', async () => {
        const family = `Bélanger${run}`;
        const p = await patient({ name: [{ family, given: ['Müller'] }] });
        expect(ids(await search(`Patient?family=Belanger${run}`))).toEqual([p.id]);
        expect(ids(await search(`Patient?family=${family}&given=muller`))).toEqual([p.id]);
      });

      test(':exact is case- and accent-sensitive, whole value', async () => {
        const family = `Lien${run}`;
        const p = await patient({ name: [{ family }] });
        expect(ids(await search(`Patient?family:exact=${family}`))).toEqual([p.id]);
        expect(ids(await search(`Patient?family:exact=${family.toLowerCase()}`))).toEqual([]);
        expect(ids(await search(`Patient?family:exact=Lien`))).not.toContain(p.id);
      });

      test(':contains matches inside the value', async () => {
        const family = `Xq${run}Berg`;
        const p = await patient({ name: [{ family }] });
        expect(ids(await search(`Patient?family:contains=${run}berg`))).toEqual([p.id]);
        expect(ids(await search(`Patient?family=${run}berg`))).toEqual([]);
      });

      test('address parts are searchable', async () => {
        const city = `Trondheim${run}`;
        const p = await patient({ address: [{ city, postalCode: '7030', country: 'NO' }] });
        expect(ids(await search(`Patient?address-city=${city}`))).toEqual([p.id]);
        expect(ids(await search(`Patient?address=${city.toLowerCase()}`))).toEqual([p.id]);
      });
    });

    describe('search: reference, :identifier and chains', () => {
      test('by Type/id and by id; :identifier; :missing', async () => {
        const p = await patient();
        const org = await organization();
        const resh = org.identifier?.[0]?.value as string;
        const { resource: eoc } = await store.create<EpisodeOfCare>({
          resourceType: 'EpisodeOfCare',
          status: 'active',
          patient: { reference: `Patient/${p.id}` },
          managingOrganization: {
            reference: `Organization/${org.id}`,
            identifier: { system: RESH, value: resh },
          },
          period: { start: '2024-02-01' },
        });
        expect(ids(await search(`EpisodeOfCare?patient=Patient/${p.id}`))).toEqual([eoc.id]);
        expect(ids(await search(`EpisodeOfCare?patient=${p.id}`))).toEqual([eoc.id]);
        expect(ids(await search(`EpisodeOfCare?organization=Organization/${org.id}`))).toEqual([eoc.id]);
        expect(ids(await search(`EpisodeOfCare?organization:identifier=${RESH}|${resh}`))).toEqual([eoc.id]);
        expect(ids(await search(`EpisodeOfCare?patient=${p.id}&care-manager:missing=true`))).toEqual([
          eoc.id,
        ]);
        expect(ids(await search(`EpisodeOfCare?patient=${p.id}&organization:missing=true`))).toEqual([]);
      });

      test('canonical references (QuestionnaireResponse.questionnaire) with and without version', async () => {
        const p = await patient();
        const url = `${BASELINE}-${run}`;
        const { resource: qr } = await store.create(
          questionnaireResponse(p, { questionnaire: `${url}|2.0.0` }),
        );
        expect(ids(await search(`QuestionnaireResponse?questionnaire=${url}|2.0.0`))).toEqual([qr.id]);
        expect(ids(await search(`QuestionnaireResponse?questionnaire=${url}`))).toEqual([qr.id]);
      });

      test('chained one level: subject:Patient.identifier and subject.identifier', async () => {
        const p = await patient();
        const other = await patient();
        const value = p.identifier?.[0]?.value as string;
        const { resource: qr } = await store.create(questionnaireResponse(p));
        await store.create(questionnaireResponse(other));
        expect(
          ids(await search(`QuestionnaireResponse?subject:Patient.identifier=${PSEUDONYM}|${value}`)),
        ).toEqual([qr.id]);
        expect(ids(await search(`QuestionnaireResponse?subject.identifier=${PSEUDONYM}|${value}`))).toEqual([
          qr.id,
        ]);
        expect(ids(await search(`QuestionnaireResponse?patient.identifier=${value}`))).toEqual([qr.id]);
      });

      test('chained by organization identifier (EpisodeOfCare?organization.identifier)', async () => {
        const org = await organization();
        const p = await patient();
        const { resource: eoc } = await store.create<EpisodeOfCare>({
          resourceType: 'EpisodeOfCare',
          status: 'finished',
          patient: { reference: `Patient/${p.id}` },
          managingOrganization: { reference: `Organization/${org.id}` },
        });
        const resh = org.identifier?.[0]?.value as string;
        expect(ids(await search(`EpisodeOfCare?organization.identifier=${RESH}|${resh}`))).toEqual([eoc.id]);
        expect(
          ids(await search(`EpisodeOfCare?organization:Organization.name=Smerteklinikken&patient=${p.id}`)),
        ).toEqual([eoc.id]);
      });
    });

    describe('search: date', () => {
      let ids3: { y2023: string; m2024: string; d2024: string };
      let scope: string;
      beforeAll(async () => {
        const system = `https://norpain.no/fhir/sid/${unique('dates')}`;
        scope = `identifier=${system}|`;
        const mk = async (birthDate: string) =>
          (await patient({ identifier: [{ system, value: unique('d') }], birthDate })).id;
        ids3 = { y2023: await mk('2023'), m2024: await mk('2024-02'), d2024: await mk('2024-02-15') };
      });

      test('partial dates are ranges: eq matches values inside the search range', async () => {
        const { y2023, m2024, d2024 } = ids3;
        expect(ids(await search(`Patient?${scope}&birthdate=2024`))).toEqual([m2024, d2024].sort());
        expect(ids(await search(`Patient?${scope}&birthdate=2024-02`))).toEqual([m2024, d2024].sort());
        expect(ids(await search(`Patient?${scope}&birthdate=2024-02-15`))).toEqual([d2024]);
        expect(ids(await search(`Patient?${scope}&birthdate=2023-06`))).toEqual([]);
        expect(ids(await search(`Patient?${scope}&birthdate=2023`))).toEqual([y2023]);
      });

      test('prefixes gt, lt, ge, le, ne, sa, eb', async () => {
        const { y2023, m2024, d2024 } = ids3;
        expect(ids(await search(`Patient?${scope}&birthdate=gt2023-12-31`))).toEqual([m2024, d2024].sort());
        expect(ids(await search(`Patient?${scope}&birthdate=lt2024-02-10`))).toEqual([y2023, m2024].sort());
        expect(ids(await search(`Patient?${scope}&birthdate=ge2024-02-15`))).toEqual([m2024, d2024].sort());
        expect(ids(await search(`Patient?${scope}&birthdate=le2023-12-31`))).toEqual([y2023]);
        expect(ids(await search(`Patient?${scope}&birthdate=ne2024-02-15`))).toEqual([y2023, m2024].sort());
        expect(ids(await search(`Patient?${scope}&birthdate=sa2023-12-31`))).toEqual([m2024, d2024].sort());
        expect(ids(await search(`Patient?${scope}&birthdate=eb2024-01-01`))).toEqual([y2023]);
        expect(ids(await search(`Patient?${scope}&birthdate=ge2023&birthdate=lt2024`))).toEqual([y2023]);
      });

      test('Period ranges, with an open end (EpisodeOfCare.period)', async () => {
        const p = await patient();
        const mk = async (period: EpisodeOfCare['period']) =>
          (
            await store.create<EpisodeOfCare>({
              resourceType: 'EpisodeOfCare',
              status: 'active',
              patient: { reference: `Patient/${p.id}` },
              period,
            })
          ).resource.id as string;
        const closed = await mk({ start: '2022-03-01', end: '2022-09-30' });
        const open = await mk({ start: '2023-05-01' });
        const q = (d: string) => search(`EpisodeOfCare?patient=${p.id}&date=${d}`).then(ids);
        expect(await q('2022')).toEqual([closed]);
        expect(await q('2022-06')).toEqual([]); // a June search range does not contain the whole period
        expect(await q('ge2023-01-01')).toEqual([open]);
        expect(await q('gt2030-01-01')).toEqual([open]); // the open end extends beyond any date
        expect(await q('lt2022-06-01')).toEqual([closed]);
        expect(await q('sa2022-12-31')).toEqual([open]);
        expect(await q('eb2023-01-01')).toEqual([closed]);
        expect(await q('ap2022-06-15')).toContain(closed);
      });

      test('dateTime with a zone (QuestionnaireResponse.authored)', async () => {
        const p = await patient();
        const { resource: qr } = await store.create(
          questionnaireResponse(p, { authored: '2024-03-05T23:30:00+01:00' }),
        );
        const q = (d: string) =>
          search(`QuestionnaireResponse?subject=Patient/${p.id}&authored=${d}`).then(ids);
        expect(await q('2024-03-05')).toEqual([qr.id]); // 22:30Z
        expect(await q('ge2024-03-01&authored=lt2024-04-01')).toEqual([qr.id]);
        expect(await q('gt2024-03-05T22:31:00Z')).toEqual([]);
        expect(await q('lt2024-03-05T22:31:00Z')).toEqual([qr.id]);
      });

      test('an invalid date is 400', async () => {
        await expect(
          store.search({
            resourceType: 'Patient',
            filters: [{ code: 'birthdate', operator: 'eq', value: 'soon' }],
          }),
        ).rejects.toMatchObject({ status: 400 });
      });
    });

    describe('search: number, quantity, uri', () => {
      test('quantity with prefixes and units (Encounter.length)', async () => {
        const p = await patient();
        const mk = async (value: number) =>
          (
            await store.create<Encounter>({
              resourceType: 'Encounter',
              status: 'finished',
              class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
              subject: { reference: `Patient/${p.id}` },
              length: { value, unit: 'min', system: 'http://unitsofmeasure.org', code: 'min' },
            })
          ).resource.id as string;
        const short = await mk(30);
        const long = await mk(90);
        const q = (v: string) => search(`Encounter?subject=Patient/${p.id}&length=${v}`).then(ids);
        expect(await q('30')).toEqual([short]);
        expect(await q('gt45')).toEqual([long]);
        expect(await q('le30')).toEqual([short]);
        expect(await q('90|http://unitsofmeasure.org|min')).toEqual([long]);
        expect(await q('90||min')).toEqual([long]);
        expect(await q('90|http://unitsofmeasure.org|h')).toEqual([]);
      });

      test('number with precision and prefixes (RiskAssessment probability)', async () => {
        const p = await patient();
        const mk = async (probabilityDecimal: number) =>
          (
            await store.create<RiskAssessment>({
              resourceType: 'RiskAssessment',
              status: 'final',
              subject: { reference: `Patient/${p.id}` },
              prediction: [{ probabilityDecimal }],
            })
          ).resource.id as string;
        const low = await mk(0.2);
        const high = await mk(0.75);
        const q = (v: string) => search(`RiskAssessment?subject=Patient/${p.id}&probability=${v}`).then(ids);
        expect(await q('0.2')).toEqual([low]);
        expect(await q('0.75')).toEqual([high]);
        expect(await q('gt0.5')).toEqual([high]);
        expect(await q('lt0.5')).toEqual([low]);
        expect(await q('ge0.2')).toEqual([low, high].sort());
        expect(await q('0.3')).toEqual([]);
      });

      test('uri (_profile)', async () => {
        // A registry profile: a store may refuse any other (HAPI keeps every profile for ever).
        const profile = NORPAIN_PROFILES.Patient;
        const p = await patient({ meta: { profile: [profile] } });
        const other = await patient();
        expect(ids(await search(`Patient?_profile=${profile}&_id=${p.id},${other.id}`))).toEqual([p.id]);
      });
    });

    describe('search: _id, _lastUpdated, paging, totals, sorting', () => {
      test('_id, with several ids', async () => {
        const a = await patient();
        const b = await patient();
        expect(ids(await search(`Patient?_id=${a.id}`))).toEqual([a.id]);
        expect(ids(await search(`Patient?_id=${a.id},${b.id}`))).toEqual([a.id, b.id].sort());
      });

      test('_lastUpdated with prefixes', async () => {
        const p = await patient();
        const value = p.identifier?.[0]?.value as string;
        const lu = p.meta?.lastUpdated as string;
        // Encoded: a store may write the offset as "+00:00", and a bare "+" in a query is a space.
        const q = (d: string) =>
          search(`Patient?identifier=${PSEUDONYM}|${value}&_lastUpdated=${encodeURIComponent(d)}`).then(ids);
        expect(await q(`ge${lu}`)).toEqual([p.id]);
        expect(await q(`le${lu}`)).toEqual([p.id]);
        expect(await q(`gt${lu}`)).toEqual([]);
        expect(await q(`lt${lu}`)).toEqual([]);
        expect(await q(`ge2000-01-01`)).toEqual([p.id]);
      });

      test('paging with _count and offset, _total and _summary=count', async () => {
        const system = `https://norpain.no/fhir/sid/${unique('page')}`;
        const created: string[] = [];
        for (let i = 0; i < 7; i++) {
          created.push((await patient({ identifier: [{ system, value: String(i) }] })).id);
        }
        const seen: string[] = [];
        let offset: number | undefined = 0;
        let pages = 0;
        while (offset !== undefined) {
          const page: SearchResult = await store.search({
            ...parseSearchRequest(`Patient?identifier=${system}|&_count=3`),
            offset,
          });
          expect(page.matches.length).toBeLessThanOrEqual(3);
          seen.push(...page.matches.map((m) => m.id as string));
          offset = page.nextOffset;
          pages++;
          expect(pages).toBeLessThan(10);
        }
        expect(pages).toBe(3);
        expect(seen.sort()).toEqual(created.sort());

        const total = await search(`Patient?identifier=${system}|&_total=accurate&_count=2`);
        expect(total.total).toBe(7);
        expect(total.matches).toHaveLength(2);
        expect(total.nextOffset).toBe(2);
        const count = await search(`Patient?identifier=${system}|&_summary=count`);
        expect(count.total).toBe(7);
        expect(count.matches).toHaveLength(0);
      });

      test('the default page is 20', async () => {
        const system = `https://norpain.no/fhir/sid/${unique('default')}`;
        for (let i = 0; i < 21; i++) {
          await patient({ identifier: [{ system, value: String(i) }] });
        }
        const page = await search(`Patient?identifier=${system}|`);
        expect(page.matches).toHaveLength(20);
        expect(page.nextOffset).toBe(20);
      });

      test('_sort ascending and descending, by a parameter and by _lastUpdated', async () => {
        const system = `https://norpain.no/fhir/sid/${unique('sort')}`;
        // A short pause between writes so that lastUpdated differs even on a coarse clock.
        const mk = async (birthDate: string) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          return (await patient({ identifier: [{ system, value: birthDate }], birthDate })).id;
        };
        const b = await mk('1990-05-01');
        const a = await mk('1980-05-01');
        const c = await mk('2000-05-01');
        const order = (q: string) =>
          search(`Patient?identifier=${system}|&${q}`).then((r) => r.matches.map((m) => m.id));
        expect(await order('_sort=birthdate')).toEqual([a, b, c]);
        expect(await order('_sort=-birthdate')).toEqual([c, b, a]);
        expect(await order('_sort=-_lastUpdated')).toEqual([c, a, b]);
        expect(await order('_sort=_lastUpdated')).toEqual([b, a, c]);
      });
    });

    describe('search: _include and _revinclude', () => {
      test('_include pulls in the referenced Patient; _revinclude the referring responses', async () => {
        const p = await patient();
        const { resource: qr1 } = await store.create(questionnaireResponse(p));
        const { resource: qr2 } = await store.create(questionnaireResponse(p, { status: 'in-progress' }));
        const withInclude = await search(
          `QuestionnaireResponse?subject=Patient/${p.id}&_include=QuestionnaireResponse:subject`,
        );
        expect(ids(withInclude)).toEqual([qr1.id, qr2.id].sort());
        expect(withInclude.included.map((r) => `${r.resourceType}/${r.id}`)).toEqual([`Patient/${p.id}`]);

        const withRev = await search(`Patient?_id=${p.id}&_revinclude=QuestionnaireResponse:subject`);
        expect(ids(withRev)).toEqual([p.id]);
        expect(withRev.included.map((r) => r.id).sort()).toEqual([qr1.id, qr2.id].sort());
      });

      test('_include of EpisodeOfCare:organization', async () => {
        const p = await patient();
        const org = await organization();
        await store.create<EpisodeOfCare>({
          resourceType: 'EpisodeOfCare',
          status: 'active',
          patient: { reference: `Patient/${p.id}` },
          managingOrganization: { reference: `Organization/${org.id}` },
        });
        const result = await search(
          `EpisodeOfCare?patient=${p.id}&_include=EpisodeOfCare:organization&_include=EpisodeOfCare:patient`,
        );
        expect(result.matches).toHaveLength(1);
        expect(result.included.map((r) => `${r.resourceType}/${r.id}`).sort()).toEqual(
          [`Organization/${org.id}`, `Patient/${p.id}`].sort(),
        );
      });
    });

    describe('search errors', () => {
      test('an unknown search parameter is 400', async () => {
        await expect(search(`Patient?no-such-parameter=${run}`)).rejects.toMatchObject({ status: 400 });
      });
    });

    describe('history', () => {
      test('instance history is newest first, with count/offset and _since', async () => {
        const p = await patient();
        const v2 = (await store.update<Patient>({ ...p, gender: 'male' })).resource;
        const v3 = (await store.update<Patient>({ ...v2, id: p.id, gender: 'other' })).resource;
        const all = await store.history('Patient', p.id);
        expect(all.total).toBe(3);
        expect(all.entries.map((e) => e.versionId)).toEqual(['3', '2', '1']);
        expect(all.entries.map((e) => e.method)).toEqual(['PUT', 'PUT', 'POST']);
        expect((all.entries[2].resource as Patient).gender).toBe('female');
        const page = await store.history('Patient', p.id, { count: 2 });
        expect(page.entries.map((e) => e.versionId)).toEqual(['3', '2']);
        expect(page.nextOffset).toBe(2);
        const rest = await store.history('Patient', p.id, { count: 2, offset: 2 });
        expect(rest.entries.map((e) => e.versionId)).toEqual(['1']);
        expect(rest.nextOffset).toBeUndefined();
        const since = await store.history('Patient', p.id, { since: v3.meta?.lastUpdated });
        expect(since.entries.map((e) => e.versionId)).toContain('3');
        expect(since.entries.map((e) => e.versionId)).not.toContain('1');
      });

      test('history of an unknown instance is 404', async () => {
        await expect(store.history('Patient', unique('none'))).rejects.toMatchObject({ status: 404 });
      });

      test('type history holds the newest changes first', async () => {
        const org = await organization();
        await store.update<Organization>({ ...org, name: 'Smerteklinikken, Haukeland' });
        const history = await store.history('Organization', undefined, { count: 50 });
        const mine = history.entries.filter((e) => e.id === org.id);
        expect(mine.map((e) => e.versionId)).toEqual(['2', '1']);
        for (let i = 1; i < history.entries.length; i++) {
          expect(history.entries[i - 1].lastUpdated >= history.entries[i].lastUpdated).toBe(true);
        }
        expect(history.total).toBeGreaterThanOrEqual(2);
      });
    });

    describe('transaction', () => {
      test('creates a Patient and resources referring to it by urn:uuid, nested references included', async () => {
        const patientUrl = `urn:uuid:${randomUUID()}`;
        const encounterUrl = `urn:uuid:${randomUUID()}`;
        const value = unique('p');
        const bundle: Bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            {
              fullUrl: encounterUrl,
              resource: {
                resourceType: 'Encounter',
                status: 'finished',
                class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
                subject: { reference: patientUrl },
              },
              request: { method: 'POST', url: 'Encounter' },
            },
            {
              fullUrl: patientUrl,
              resource: { resourceType: 'Patient', identifier: [{ system: PSEUDONYM, value }] },
              request: { method: 'POST', url: 'Patient' },
            },
            {
              resource: {
                resourceType: 'QuestionnaireResponse',
                status: 'completed',
                questionnaire: `${BASELINE}|1.0.0`,
                subject: { reference: patientUrl },
                encounter: { reference: encounterUrl },
                item: [
                  {
                    linkId: 'g1',
                    item: [{ linkId: 'who', answer: [{ valueReference: { reference: patientUrl } }] }],
                  },
                ],
              },
              request: { method: 'POST', url: 'QuestionnaireResponse' },
            },
          ],
        };
        const response = await store.transaction(bundle);
        expect(response.type).toBe('transaction-response');
        expect(response.entry).toHaveLength(3);
        for (const entry of response.entry ?? []) {
          expect(entry.response?.status).toMatch(/^201/);
          expect(entry.response?.location).toMatch(/^[A-Za-z]+\/[A-Za-z0-9\-.]+\/_history\/1$/);
          expect(entry.response?.etag).toBe('W/"1"');
          expect(entry.response?.lastModified).toBeDefined();
        }
        const patientId = (response.entry?.[1].resource as Patient).id as string;
        const encounterId = (response.entry?.[0].resource as Encounter).id as string;
        expect(response.entry?.[1].response?.location).toContain(`Patient/${patientId}/_history/1`);
        const qrs = await search<QuestionnaireResponse>(`QuestionnaireResponse?subject=Patient/${patientId}`);
        expect(qrs.matches).toHaveLength(1);
        const qr = qrs.matches[0];
        expect(qr.encounter?.reference).toBe(`Encounter/${encounterId}`);
        expect(qr.item?.[0].item?.[0].answer?.[0].valueReference?.reference).toBe(`Patient/${patientId}`);
        const enc = await store.read<Encounter>('Encounter', encounterId);
        expect(enc.subject?.reference).toBe(`Patient/${patientId}`);
      });

      test('honours ifNoneExist, conditional update, ifMatch and DELETE', async () => {
        const existing = await patient();
        const existingValue = existing.identifier?.[0]?.value as string;
        const toDelete = await organization();
        const toUpdate = await organization();
        const condValue = unique('p');
        const patientUrl = `urn:uuid:${randomUUID()}`;
        const response = await store.transaction({
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            {
              fullUrl: patientUrl,
              resource: {
                resourceType: 'Patient',
                identifier: [{ system: PSEUDONYM, value: existingValue }],
              },
              request: {
                method: 'POST',
                url: 'Patient',
                ifNoneExist: `identifier=${PSEUDONYM}|${existingValue}`,
              },
            },
            {
              resource: {
                resourceType: 'Patient',
                identifier: [{ system: PSEUDONYM, value: condValue }],
                gender: 'male',
              },
              request: { method: 'PUT', url: `Patient?identifier=${PSEUDONYM}|${condValue}` },
            },
            {
              resource: { ...toUpdate, name: 'Smerteklinikken, UNN' },
              request: { method: 'PUT', url: `Organization/${toUpdate.id}`, ifMatch: 'W/"1"' },
            },
            { request: { method: 'DELETE', url: `Organization/${toDelete.id}` } },
            {
              resource: questionnaireResponse({ id: 'placeholder' } as Patient, {
                subject: { reference: patientUrl },
              }),
              request: { method: 'POST', url: 'QuestionnaireResponse' },
            },
            { request: { method: 'GET', url: `Organization/${toUpdate.id}` } },
          ],
        });
        const [pe, ce, ue, de, qe, ge] = response.entry ?? [];
        // GET runs last, so it sees the update made by the PUT entry before it.
        expect(ge.response?.status).toMatch(/^200/);
        expect((ge.resource as Organization).name).toBe('Smerteklinikken, UNN');
        expect(pe.response?.status).toMatch(/^200/);
        expect((pe.resource as Patient).id).toBe(existing.id);
        expect(ce.response?.status).toMatch(/^201/);
        expect(ue.response?.status).toMatch(/^200/);
        expect(ue.response?.etag).toBe('W/"2"');
        expect(de.response?.status).toMatch(/^2/);
        expect(qe.response?.status).toMatch(/^201/);
        expect((qe.resource as QuestionnaireResponse).subject?.reference).toBe(`Patient/${existing.id}`);
        await expect(store.read('Organization', toDelete.id)).rejects.toMatchObject({ status: 410 });
        expect((await store.read<Organization>('Organization', toUpdate.id)).name).toBe(
          'Smerteklinikken, UNN',
        );
        expect(ids(await search(`Patient?identifier=${PSEUDONYM}|${condValue}`))).toHaveLength(1);
      });

      test('an urn:uuid reference that no entry defines is 400 and writes nothing', async () => {
        const value = unique('p');
        await expect(
          store.transaction({
            resourceType: 'Bundle',
            type: 'transaction',
            entry: [
              {
                fullUrl: `urn:uuid:${randomUUID()}`,
                resource: { resourceType: 'Patient', identifier: [{ system: PSEUDONYM, value }] },
                request: { method: 'POST', url: 'Patient' },
              },
              {
                resource: questionnaireResponse({ id: 'placeholder' } as Patient, {
                  subject: { reference: `urn:uuid:${randomUUID()}` },
                }),
                request: { method: 'POST', url: 'QuestionnaireResponse' },
              },
            ],
          }),
        ).rejects.toMatchObject({ status: 400 });
        expect((await search(`Patient?identifier=${PSEUDONYM}|${value}`)).matches).toHaveLength(0);
      });

      test('is all or nothing: a failing entry leaves nothing written', async () => {
        const org = await organization();
        const other = await organization();
        const value = unique('p');
        const patientUrl = `urn:uuid:${randomUUID()}`;
        const failing = store.transaction({
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            {
              fullUrl: patientUrl,
              resource: { resourceType: 'Patient', identifier: [{ system: PSEUDONYM, value }] },
              request: { method: 'POST', url: 'Patient' },
            },
            {
              resource: { ...org, name: 'Endret' },
              request: { method: 'PUT', url: `Organization/${org.id}`, ifMatch: 'W/"7"' },
            },
            { request: { method: 'DELETE', url: `Organization/${other.id}` } },
          ],
        });
        await expect(failing).rejects.toMatchObject({ status: 412 });
        expect((await store.read('Organization', other.id)).meta?.versionId).toBe('1');
        expect((await search(`Patient?identifier=${PSEUDONYM}|${value}`)).matches).toHaveLength(0);
        const after = await store.read<Organization>('Organization', org.id);
        expect(after.meta?.versionId).toBe('1');
        expect(after.name).toBe(org.name);
      });
    });

    describe('erasePatientCompartment', () => {
      test('erases the Patient and every resource referring to it, all versions; others stay', async () => {
        const org = await organization();
        const p = await patient();
        const keep = await patient();
        const value = p.identifier?.[0]?.value as string;
        await store.update<Patient>({ ...p, gender: 'male' });
        const { resource: eoc } = await store.create<EpisodeOfCare>({
          resourceType: 'EpisodeOfCare',
          status: 'active',
          patient: { reference: `Patient/${p.id}` },
          managingOrganization: { reference: `Organization/${org.id}` },
        });
        const { resource: enc } = await store.create<Encounter>({
          resourceType: 'Encounter',
          status: 'finished',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
          subject: { reference: `Patient/${p.id}` },
          episodeOfCare: [{ reference: `EpisodeOfCare/${eoc.id}` }],
        });
        const { resource: qr } = await store.create(questionnaireResponse(p));
        await store.update({ ...qr, id: qr.id as string, status: 'amended' });
        const { resource: cond } = await store.create<Condition>({
          resourceType: 'Condition',
          subject: { reference: `Patient/${p.id}` },
          code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'R52' }] },
        });
        await store.delete('Condition', cond.id as string);
        const { resource: keptQr } = await store.create(questionnaireResponse(keep));

        const receipt = await store.erasePatientCompartment(p.id);
        expect(receipt.residual).toBe(0);
        expect(receipt.erased).toEqual({
          Patient: 1,
          EpisodeOfCare: 1,
          Encounter: 1,
          QuestionnaireResponse: 1,
          Condition: 1,
        });
        // Patient 2 versions, EpisodeOfCare 1, Encounter 1, QuestionnaireResponse 2, Condition 2.
        expect(receipt.versionsErased).toBe(8);
        expect(JSON.stringify(receipt)).not.toContain(p.id);
        expect(JSON.stringify(receipt)).not.toContain(value);

        for (const [type, id] of [
          ['Patient', p.id],
          ['EpisodeOfCare', eoc.id],
          ['Encounter', enc.id],
          ['QuestionnaireResponse', qr.id],
          ['Condition', cond.id],
        ] as const) {
          await expect(store.read(type, id as string)).rejects.toMatchObject({ status: 404 });
          await expect(store.vread(type, id as string, '1')).rejects.toMatchObject({ status: 404 });
        }
        expect((await search(`Patient?identifier=${PSEUDONYM}|${value}`)).matches).toHaveLength(0);
        expect((await search(`QuestionnaireResponse?subject=Patient/${p.id}`)).matches).toHaveLength(0);
        const orgHistory = await store.history('Organization', org.id);
        expect(orgHistory.total).toBe(1);
        // What did not refer to the patient is untouched.
        expect((await store.read('Organization', org.id)).id).toBe(org.id);
        expect((await store.read('Patient', keep.id)).id).toBe(keep.id);
        expect((await store.read('QuestionnaireResponse', keptQr.id as string)).id).toBe(keptQr.id);
      });

      test('finds every reference, not only search parameters: extension, contained, versioned, history, indirect', async () => {
        const p = await patient();
        const other = await patient();
        const observation = (extra: Partial<Observation>): Observation => ({
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '72514-3' }] },
          ...extra,
        });
        // Only an extension names the person: no search parameter covers it.
        const { resource: byExtension } = await store.create(
          observation({
            extension: [
              {
                url: 'https://norpain.no/fhir/StructureDefinition/test-about',
                valueReference: { reference: `Patient/${p.id}` },
              },
            ],
          }),
        );
        // Only a contained resource names the person.
        const { resource: byContained } = await store.create(
          observation({
            contained: [
              {
                resourceType: 'Encounter',
                id: 'visit',
                status: 'finished',
                class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
                subject: { reference: `Patient/${p.id}` },
              },
            ],
            encounter: { reference: '#visit' },
          }),
        );
        const { resource: versioned } = await store.create(
          observation({ subject: { reference: `Patient/${p.id}/_history/1` } }),
        );
        // Named the person in its first version only, then someone else.
        const { resource: once } = await store.create(
          observation({ subject: { reference: `Patient/${p.id}` } }),
        );
        await store.update({ ...once, id: once.id as string, subject: { reference: `Patient/${other.id}` } });
        // Names only the person's Encounter: about the person too.
        const { resource: enc } = await store.create<Encounter>({
          resourceType: 'Encounter',
          status: 'finished',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
          subject: { reference: `Patient/${p.id}` },
        });
        const { resource: indirect } = await store.create(
          observation({ encounter: { reference: `Encounter/${enc.id}` } }),
        );
        const { resource: unrelated } = await store.create(
          observation({ subject: { reference: `Patient/${other.id}` } }),
        );

        const receipt = await store.erasePatientCompartment(p.id);
        expect(receipt.residual).toBe(0);
        expect(receipt.erased).toEqual({ Patient: 1, Encounter: 1, Observation: 5 });
        for (const r of [byExtension, byContained, versioned, once, indirect]) {
          await expect(store.vread('Observation', r.id as string, '1')).rejects.toMatchObject({
            status: 404,
          });
        }
        expect((await store.read('Observation', unrelated.id as string)).id).toBe(unrelated.id);
        expect((await store.read('Patient', other.id)).id).toBe(other.id);
      });

      test('the residual tells the truth: text of the person left outside any reference is counted', async () => {
        const p = await patient();
        const pseudonym = p.identifier?.[0]?.value as string;
        await store.create(questionnaireResponse(p));
        // Written past every door: the pseudonym as free text, no reference to the Patient.
        const { resource: stray } = await store.create<Observation>({
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '72514-3' }] },
          valueString: `about ${pseudonym}`,
        });
        const receipt = await store.erasePatientCompartment(p.id, { texts: [pseudonym] });
        expect(receipt.erased).toEqual({ Patient: 1, QuestionnaireResponse: 1 });
        expect(receipt.residual).toBe(1);

        await store.eraseResource('Observation', stray.id as string);
        const again = await store.erasePatientCompartment(p.id, { texts: [pseudonym] });
        expect(again).toEqual({ erased: {}, versionsErased: 0, residual: 0 });
      });

      test('erasing a patient that does not exist erases nothing and reports residual 0', async () => {
        const receipt = await store.erasePatientCompartment(unique('nobody'));
        expect(receipt).toEqual({ erased: {}, versionsErased: 0, residual: 0 });
      });
    });
  });
}
