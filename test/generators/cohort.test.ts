import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { parseNationalIdValue, preferredSystem } from '../../src/identity';
import { NORPAIN_PROFILES } from '../../src/validation/profiles';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { generateCohort, type CohortOptions, type CohortPerson } from './cohort';
import { loadCohort } from './load';

const OPTIONS: Omit<CohortOptions, 'pseudonymiser'> = {
  persons: 60,
  seed: 11,
  fromYear: 2021,
  toYear: 2024,
  reservedShare: 0.05,
};
const TYPES = ['Patient', 'EpisodeOfCare', 'Encounter', 'Condition', 'Procedure', 'QuestionnaireResponse'];

async function fhir<T = Resource>(
  server: TestServer,
  token: string,
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.baseUrl}/${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

const total = async (server: TestServer, token: string, query: string): Promise<number | undefined> =>
  (await fhir<Bundle>(server, token, 'GET', query)).body.total;

describe('the synthetic cohort generator', () => {
  const persons: CohortPerson[] = [...generateCohort(OPTIONS)];
  const kept = persons.filter((p) => !p.reserved);
  const all = kept.flatMap((p) => p.resources);

  it('is deterministic and gives every person valid, unique synthetic national ids', () => {
    const again = [...generateCohort(OPTIONS)];
    expect(JSON.stringify(again)).toBe(JSON.stringify(persons));
    const other = [...generateCohort({ ...OPTIONS, seed: OPTIONS.seed + 1 })];
    expect(other[0].current.value).not.toBe(persons[0].current.value);
    const values = persons.flatMap((p) => p.ids.map((id) => id.value));
    expect(new Set(values).size).toBe(values.length);
    for (const id of persons.flatMap((p) => p.ids)) {
      const parsed = parseNationalIdValue(id.kind, id.value, { production: false });
      expect(parsed).toEqual({ ok: true, id: expect.objectContaining({ kind: id.kind, synthetic: true }) });
      // Synthetic (month + 80): production would refuse every one of them.
      expect(parseNationalIdValue(id.kind, id.value, { production: true })).toEqual({
        ok: false,
        problem: 'synthetic-in-production',
      });
    }
  });

  it('stores no national id and gives each Patient only the registry pseudonym', () => {
    const text = JSON.stringify(all);
    for (const id of persons.flatMap((p) => p.ids)) {
      expect(text).not.toContain(id.value);
    }
    for (const person of kept) {
      const [patient] = person.resources;
      expect(patient).toMatchObject({ resourceType: 'Patient', id: person.patientId });
      expect((patient as { identifier: unknown[] }).identifier).toEqual([
        expect.objectContaining({ value: person.pseudonym }),
      ]);
    }
    expect(persons.filter((p) => p.reserved).every((p) => p.resources.length === 0)).toBe(true);
  });

  it('covers the cases the brief names: two episodes, open episodes, D-numbers, changed numbers, both forms', () => {
    const big = [...generateCohort({ ...OPTIONS, persons: 2000 })];
    const episodes = big.flatMap((p) => p.episodes);
    expect(big.some((p) => p.episodes.length === 2)).toBe(true);
    expect(episodes.some((e) => e.start !== undefined && e.end === undefined)).toBe(true);
    expect(episodes.some((e) => !e.granted)).toBe(true);
    expect(big.some((p) => p.ids.length === 1 && p.ids[0].kind === 'dnr')).toBe(true);
    expect(big.some((p) => p.ids.map((i) => i.kind).join() === 'fnr,dnr')).toBe(true);
    expect(big.some((p) => p.ids.map((i) => i.kind).join() === 'fnr,fnr')).toBe(true);
    expect(big.some((p) => p.reserved)).toBe(true);
    const baselines = episodes.filter((e) => e.baseline).length;
    expect(baselines / episodes.filter((e) => e.start).length).toBeGreaterThan(0.5);
    expect(episodes.filter((e) => e.followUp).length / episodes.filter((e) => e.end).length).toBeGreaterThan(
      0.3,
    );
  });

  describe('against the server', () => {
    let server: TestServer;
    let dataDir: string;
    let staff: string;

    beforeAll(async () => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-cohort-'));
      await loadCohort(dataDir, OPTIONS);
      server = await startTestServer({ DATA_DIR: dataDir });
      staff = await server.token('registry-admin');
    });

    afterAll(async () => {
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('every generated resource passes $validate against its NorPain profile', async () => {
      for (const resource of all) {
        const profile = NORPAIN_PROFILES[resource.resourceType as keyof typeof NORPAIN_PROFILES];
        const query = profile ? `?profile=${encodeURIComponent(profile)}` : '';
        const reply = await fhir<OperationOutcome>(
          server,
          staff,
          'POST',
          `${resource.resourceType}/$validate${query}`,
          resource,
        );
        expect({ resource: `${resource.resourceType}/${resource.id}`, reply }).toEqual({
          resource: `${resource.resourceType}/${resource.id}`,
          reply: {
            status: 200,
            body: expect.objectContaining({ issue: [expect.objectContaining({ severity: 'information' })] }),
          },
        });
      }
    });

    it('a generated Patient with a national id added fails the same validation', async () => {
      const patient = kept[0].resources[0] as { identifier: unknown[] };
      const tampered = {
        ...patient,
        identifier: [...patient.identifier, { system: preferredSystem.fnr, value: kept[0].current.value }],
      };
      const reply = await fhir<OperationOutcome>(
        server,
        staff,
        'POST',
        `Patient/$validate?profile=${encodeURIComponent(NORPAIN_PROFILES.Patient)}`,
        tampered,
      );
      expect(reply.body.issue?.some((i) => i.severity === 'error')).toBe(true);
      expect(JSON.stringify(reply.body)).not.toContain(kept[0].current.value);
    });

    it('serves the loaded cohort to staff: search counts equal what was generated', async () => {
      for (const type of TYPES) {
        const expected = all.filter((r) => r.resourceType === type).length;
        expect({ type, total: await total(server, staff, `${type}?_summary=count`) }).toEqual({
          type,
          total: expected,
        });
      }
      const person = kept.find((p) => p.episodes.some((e) => e.baseline)) as CohortPerson;
      const read = await fhir(server, staff, 'GET', `Patient/${person.patientId}`);
      expect(read).toMatchObject({ status: 200, body: { id: person.patientId } });
    });

    it('gives each clinic exactly its own unit’s persons', async () => {
      const unit = kept[0].episodes[0].unit;
      const clinic = await server.token('clinic', { org: unit });
      const expected = kept.filter((p) => p.episodes.some((e) => e.unit === unit)).length;
      expect(await total(server, clinic, 'Patient?_summary=count')).toBe(expected);
    });

    it('links every national id a person has had to their Patient in the vault', async () => {
      const changed = kept.filter((p) => p.ids.length === 2);
      expect(changed.length).toBeGreaterThan(0);
      for (const person of [...changed, kept[0]]) {
        const clinic = await server.token('clinic', { org: person.episodes[0].unit });
        for (const id of person.ids) {
          const system = preferredSystem[id.kind as 'fnr' | 'dnr'];
          const found = await fhir<Bundle>(
            server,
            clinic,
            'GET',
            `Patient?identifier=${encodeURIComponent(`${system}|${id.value}`)}`,
          );
          expect(found.body.entry?.map((e) => e.resource?.id)).toEqual([person.patientId]);
        }
      }
    });

    it('keeps reserved persons out: they are in the register, and a write about one is refused', async () => {
      const reserved = persons.filter((p) => p.reserved);
      expect(reserved.length).toBeGreaterThan(0);
      const clinic = await server.token('clinic', { org: '999001' });
      for (const person of reserved) {
        const reply = await fhir(server, clinic, 'POST', 'Patient', {
          resourceType: 'Patient',
          identifier: [
            { system: preferredSystem[person.current.kind as 'fnr' | 'dnr'], value: person.current.value },
          ],
          gender: person.gender,
        });
        expect(reply.status).toBe(403);
        expect(JSON.stringify(reply.body)).not.toContain(person.current.value);
      }
      expect(await total(server, staff, 'Patient?_summary=count')).toBe(kept.length);
    });

    it('refuses to load a second cohort into the same DATA_DIR and changes nothing', async () => {
      await expect(loadCohort(dataDir, { ...OPTIONS, seed: 99 })).rejects.toThrow(/fresh DATA_DIR/);
      expect(await total(server, staff, 'Patient?_summary=count')).toBe(kept.length);
    });
  });
});
