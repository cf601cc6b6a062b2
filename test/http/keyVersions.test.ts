import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle, EpisodeOfCare, Patient } from '@medplum/fhirtypes';
import { addDevPseudonymKeyVersion, seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer } from '../helpers/testServer';
import { clientFor } from './client';

/**
 * Business identifiers hashed under an older pseudonym key are still found after a new key version is
 * configured: searches hash the value under every configured version. The same data folder is served
 * by a server with key 1, then by one with keys 1 and 2 (2 current).
 */
const EPISODE = 'urn:oid:2.16.578.1.12.4.1.2.999001.episode';
const random = seededRandom(1306);
let dataDir: string;

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-keyversions-'));
});
afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('EpisodeOfCare?identifier finds h1- and h2- hashes; the person is found by national id after rotation', async () => {
  const fnr = syntheticIdentifier('fnr', { random });
  const episode = (number: string, patientId: string): EpisodeOfCare => ({
    resourceType: 'EpisodeOfCare',
    status: 'active',
    identifier: [{ system: EPISODE, value: number }],
    patient: { reference: `Patient/${patientId}` },
    // What the NorPain EpisodeOfCare profile requires: referral date, unit (RESH), first consultation.
    extension: [
      { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2024-01-15' },
    ],
    managingOrganization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' } },
    period: { start: '2024-03-04' },
  });

  const before = await startTestServer({ DATA_DIR: dataDir });
  let patientId: string;
  let oldEpisode: EpisodeOfCare;
  try {
    const fhir = await clientFor(before);
    patientId = (await fhir.post<Patient>('Patient', { resourceType: 'Patient', identifier: [fnr] })).body
      .id as string;
    oldEpisode = (await fhir.post<EpisodeOfCare>('EpisodeOfCare', episode('K-1', patientId))).body;
    expect(oldEpisode.identifier?.[0].value).toMatch(/^h1-/);
  } finally {
    await before.stop();
  }

  expect(addDevPseudonymKeyVersion(dataDir)).toBe(2);
  const after = await startTestServer({ DATA_DIR: dataDir });
  try {
    const fhir = await clientFor(after);
    const newEpisode = (await fhir.post<EpisodeOfCare>('EpisodeOfCare', episode('K-2', patientId))).body;
    expect(newEpisode.identifier?.[0].value).toMatch(/^h2-/);
    const search = async (query: string) =>
      ((await fhir.get<Bundle>(`EpisodeOfCare?${query}`)).body.entry ?? []).map((e) => e.resource?.id).sort();
    expect(await search(`identifier=${EPISODE}|K-1`)).toEqual([oldEpisode.id]);
    expect(await search(`identifier=${EPISODE}|K-2`)).toEqual([newEpisode.id]);
    expect(await search(`identifier=${EPISODE}|K-1,${EPISODE}|K-2`)).toEqual(
      [oldEpisode.id, newEpisode.id].sort(),
    );
    expect(await search(`patient:identifier=${fnr.system}|${fnr.value}`)).toEqual(
      [oldEpisode.id, newEpisode.id].sort(),
    );
    // A conditional create by the old number matches the episode stored under key 1.
    const again = await fhir.post<EpisodeOfCare>('EpisodeOfCare', episode('K-1', patientId), {
      'if-none-exist': `identifier=${EPISODE}|K-1`,
    });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(oldEpisode.id);
  } finally {
    await after.stop();
  }
});
