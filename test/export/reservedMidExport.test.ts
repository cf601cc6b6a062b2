import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { registrySource, studySource } from '../../src/export/source';
import { openStudyView } from '../../src/research/view';
import { readUnits } from '../../src/units/units';
import { reservation } from '../consent/fixtures';
import { generateCohort, type CohortPerson } from '../generators/cohort';
import { loadCohort } from '../generators/load';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { awaitManifest, downloadAll, kickOff } from './bulk';
import { approval, call, ok, projectId, putApproval, researcher } from '../research/fixtures';

/**
 * A person who reserves themselves while an export runs (the reservation erases their data at once).
 * What an export reads is the stream its engine writes line by line, so the guarantee is about that
 * stream: nothing of the person is handed out once the stream has gone past the batch it was reading
 * when the reservation was recorded. The study view checks the reservations for each batch it reads
 * (500 resources); the staff stream reads the store page by page (200 rows), and the erased rows are
 * gone from the pages after. The cohort is stored in its order, so the last persons are read last.
 */
const COHORT = { persons: 1300, seed: 29, fromYear: 2021, toYear: 2024, reservedShare: 0 };
const STUDY = 'mid-export';

let server: TestServer;
let dataDir: string;
let persons: CohortPerson[];

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-export-mid-'));
  await loadCohort(dataDir, COHORT);
  persons = [...generateCohort(COHORT)];
  server = await startTestServer({ DATA_DIR: dataDir });
  const staff = await server.token('registry-admin');
  const study = approval({
    id: STUDY,
    variables: ['Patient.gender', 'EpisodeOfCare.period', 'EpisodeOfCare.patient'],
    precision: 'year',
    units: readUnits(server.config.unitsFile).map((u) => u.resh),
    period: { start: '2021-01-01', end: '2030-12-31' },
  });
  ok(await putApproval(server, staff, study), 201);
}, 300_000);

afterAll(async () => {
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** The last persons of the cohort with a birth number (a reservation names the person by it). */
function lastReservable(skip: number): CohortPerson {
  return persons
    .filter((p) => p.current.kind === 'fnr' && p.episodes.length > 0)
    .at(-1 - skip) as CohortPerson;
}

async function reserve(person: CohortPerson): Promise<void> {
  const staff = await server.token('registry-admin');
  ok(
    await call(server, staff, 'POST', 'Consent', reservation(person.current.value, { channel: 'letter' })),
    201,
  );
}

/** The id of a resource an export source gives, as an object or as its stored bytes. */
function idOf(value: Resource | Buffer): string {
  return (Buffer.isBuffer(value) ? (JSON.parse(value.toString('utf8')) as Resource) : value).id as string;
}

/** Reads the first resource of the stream, reserves the person, and reads the rest: the first id, and the
 * ids read after the reservation. */
async function idsAfterReserving(stream: AsyncIterable<Resource | Buffer>, person: CohortPerson) {
  const iterator = stream[Symbol.asyncIterator]();
  const first = await iterator.next();
  expect(first.done).toBe(false);
  await reserve(person);
  const after: string[] = [];
  for (let next = await iterator.next(); !next.done; next = await iterator.next())
    after.push(idOf(next.value));
  return { first: idOf(first.value as Resource | Buffer), after };
}

test('a staff export kicked off right after a bulk load holds everything the load wrote', async () => {
  const staff = await server.token('registry-admin');
  const { manifest } = await awaitManifest(
    await kickOff(`${server.baseUrl}/$export?_type=EpisodeOfCare`, staff),
    staff,
  );
  const exported = (await downloadAll(manifest, staff)).get('EpisodeOfCare') ?? [];
  const held = persons.flatMap((p) => p.episodes.map((e) => e.id));
  expect(exported.map((e) => e.id).sort()).toEqual([...held].sort());
  const newest = Math.max(...exported.map((e) => Date.parse(e.meta?.lastUpdated as string)));
  expect(Date.parse(manifest.transactionTime)).toBeGreaterThanOrEqual(newest);
});

test("a researcher's stream hands out nothing of a person reserved while it runs", async () => {
  const [gone, kept] = [lastReservable(0), lastReservable(1)];
  const view = await openStudyView(researcher(STUDY), server.server.studyViews);
  const { first, after } = await idsAfterReserving(view.stream('Patient'), gone);
  expect(after.length).toBeGreaterThan(1000);
  expect(first).not.toBe(projectId(server, STUDY, 'Patient', gone.patientId));
  expect([first, ...after]).toContain(projectId(server, STUDY, 'Patient', kept.patientId));
  expect(after).not.toContain(projectId(server, STUDY, 'Patient', gone.patientId));
  expect(new Set([first, ...after]).size).toBe(after.length + 1);
});

test("registry staff's stream hands out nothing of a person reserved while it runs", async () => {
  const [gone, kept] = [lastReservable(2), lastReservable(3)];
  const units = readUnits(server.config.unitsFile).map((u) => u.resh);
  // Up to the store's clock, as an export kicked off now reads: the bulk load ran its lastUpdated stamps
  // ahead of the wall clock (test/store-contract/clock.test.ts).
  const until = (server.server.store.now?.() ?? new Date()).toISOString();
  const source = registrySource(server.server.store, units, until);
  const { first, after } = await idsAfterReserving(source.stream('EpisodeOfCare', {}), gone);
  // Which episode comes first depends on the store's row order, not on the cohort's: the first one read,
  // before the reservation, is the only one that may be the kept person's and is never the erased one's.
  expect(gone.episodes.map((e) => e.id)).not.toContain(first);
  expect([first, ...after]).toEqual(expect.arrayContaining(kept.episodes.map((e) => e.id)));
  for (const episode of gone.episodes) expect(after).not.toContain(episode.id);
  expect(new Set([first, ...after]).size).toBe(after.length + 1);
});

test("both streams end at the export's transactionTime: what changes after it is left for the next _since export", async () => {
  const store = server.server.store;
  const units = readUnits(server.config.unitsFile).map((u) => u.resh);
  const view = await openStudyView(researcher(STUDY), server.server.studyViews);
  const idsOf = async (stream: AsyncIterable<Resource | Buffer>) => {
    const ids: string[] = [];
    for await (const value of stream) ids.push(idOf(value));
    return ids;
  };
  const staffSees = (until: string) => idsOf(registrySource(store, units, until).stream('Patient', {}));
  const researcherSees = (until: string) => idsOf(studySource(view, until).stream('Patient', {}));

  const until = (store.now?.() ?? new Date()).toISOString();
  // A person the study sees (not everyone in the registry is in its view), untouched by the tests above.
  const inView = new Set(await researcherSees(until));
  const changed = persons
    .slice(0, 100)
    .find((p) => inView.has(projectId(server, STUDY, 'Patient', p.patientId))) as CohortPerson;
  const projected = projectId(server, STUDY, 'Patient', changed.patientId);
  expect(await staffSees(until)).toContain(changed.patientId);
  // A new version of the person's Patient, written after the export's instant.
  const patient = await store.read<Patient>('Patient', changed.patientId);
  await store.update({ ...patient, id: changed.patientId });
  expect(await staffSees(until)).not.toContain(changed.patientId);
  expect(await researcherSees(until)).not.toContain(projected);
  const later = (store.now?.() ?? new Date()).toISOString();
  expect(await staffSees(later)).toContain(changed.patientId);
  expect(await researcherSees(later)).toContain(projected);
});
