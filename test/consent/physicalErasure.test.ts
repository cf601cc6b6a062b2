import fs from 'node:fs';
import path from 'node:path';
import type { Patient, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { awaitManifest, kickOff } from '../export/bulk';
import { DAY, startFollowUpServer, taskAt } from '../followup/fixtures';
import { episode, submitAbout } from '../helpers/clinical';
import type { TestServer } from '../helpers/testServer';
import { fillResponse } from '../validation/responses';
import { call, condition, ok, people, reservation } from './fixtures';

/**
 * Physical erasure reaches every file the server writes (DESIGN §3.2), not only the clinical store: after
 * a person with an episode, answers, follow-up Tasks, a sent invitation and a staff export reserves
 * themselves, no byte of their national id, registry Patient id, pseudonym or an answer unique to them is
 * left in any file under DATA_DIR (databases, their -wal/-shm/-journal, export files, the outbox, keys),
 * except what MAY_REMAIN names, each with why. The files are scanned while the server runs, as they are
 * when a reservation has been answered (stopping the server checkpoints the WALs, which would hide what
 * they kept).
 */
type Needle = 'national id' | 'Patient id' | 'pseudonym' | 'answer';

const MAY_REMAIN: { file: RegExp; needles: Needle[]; why: string }[] = [
  {
    file: /^audit\.sqlite(-wal|-shm|-journal)?$/,
    needles: ['Patient id', 'pseudonym'],
    why:
      'the audit log is append-only and hash-chained; its entries name the person by pseudonym and the ' +
      'resources by Patient id, so that the person can still see who read or changed data about them ' +
      '(DESIGN §3.4, src/audit/log.ts "Erasure"); it never holds a national id or health data',
  },
  {
    file: /^outbox\/[^/]+\.json$/,
    needles: ['national id'],
    why:
      'an invitation delivered before the reservation: the outbox is the development channel, and what it ' +
      'holds has been handed to the recipient (in production it has left over AMQP); the reservation ' +
      'cancels what is pending, nothing pending is sent again (test/followup/reservation.test.ts)',
  },
];

let server: TestServer;
let clinic: string;
let staff: string;
const [reserving, staying] = people(9107, 2);
const baseline = readNorPainQuestionnaires().find((q) =>
  q.url?.endsWith('/norpain-baseline'),
) as Questionnaire;

beforeAll(async () => {
  ({ server, clinic, staff } = await startFollowUpServer());
});
afterAll(() => server.stop());

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    return d.isDirectory() ? filesUnder(full) : d.isFile() ? [full] : [];
  });
}

/** Every (file relative to DATA_DIR, needle) where the file's bytes hold the needle's text. */
function scan(needles: Record<Needle, string>): { file: string; needle: Needle }[] {
  return filesUnder(server.dataDir).flatMap((full) => {
    const bytes = fs.readFileSync(full);
    const file = path.relative(server.dataDir, full).split(path.sep).join('/');
    return (Object.keys(needles) as Needle[])
      .filter((needle) => bytes.includes(needles[needle]))
      .map((needle) => ({ file, needle }));
  });
}

/** A person as a clinic registers them: an episode that ended a month ago (so the baseline and the
 * 12-month Tasks are scheduled) and a Condition whose code is an answer no one else gave. */
async function registerPerson(fnr: string, answer: string): Promise<Record<Needle, string>> {
  const end = new Date(Date.now() - 30 * DAY).toISOString().slice(0, 10);
  const [patientId] = await submitAbout(server, clinic, fnr, (p) => [
    episode(p, { end }),
    condition('pe', answer, { reference: p }),
  ]);
  const patient = ok(await call<Patient>(server, staff, 'GET', `Patient/${patientId}`), 200);
  return {
    'national id': fnr,
    'Patient id': patientId,
    pseudonym: patient.identifier?.[0].value as string,
    answer,
  };
}

test('after a reservation no file under DATA_DIR holds the person, beyond what the register and the audit log keep', async () => {
  const person = await registerPerson(reserving, 'svar-bare-denne-personen-ga-5e1d0b');
  const other = await registerPerson(staying, 'svar-bare-den-andre-ga-9c4a27');
  const [personEpisode] = (
    await call<{ entry?: { resource?: { id?: string } }[] }>(
      server,
      staff,
      'GET',
      `EpisodeOfCare?patient=Patient/${person['Patient id']}`,
    )
  ).body.entry?.map((e) => e.resource?.id as string) ?? [''];

  // The baseline invitations go out (the dispatch ledger records them, the outbox holds the messages) …
  const invited = await server.server.followUp.dispatcher.run(new Date(Date.now() + 60_000));
  expect(invited).toMatchObject({ invited: 2, failed: 0 });
  // … the person answers theirs (the Task is completed, the ledger closes it) …
  const task = await taskAt(server, staff, personEpisode, 'baseline');
  const portal = await server.token('portal', { pid: reserving });
  const answer: QuestionnaireResponse = {
    ...fillResponse(baseline),
    subject: { reference: `Patient/${person['Patient id']}` },
    authored: new Date().toISOString(),
    basedOn: [{ reference: `Task/${task.id}` }],
  };
  ok(await call(server, portal, 'POST', 'QuestionnaireResponse', answer), 201);
  // … and registry staff export everything (NDJSON files under DATA_DIR/export).
  const exported = await kickOff(`${server.baseUrl}/$export`, staff);
  await awaitManifest(exported, staff);

  // The scan finds every needle before the reservation, so it can fail.
  const before = scan(person);
  expect([...new Set(before.map((f) => f.needle))].sort()).toEqual(Object.keys(person).sort());

  ok(await call(server, portal, 'POST', 'Consent', reservation(reserving)), 201);

  const left = scan(person).filter(
    ({ file, needle }) => !MAY_REMAIN.some((may) => may.file.test(file) && may.needles.includes(needle)),
  );
  expect(left).toEqual([]);
  // The export that held the person is withdrawn, as a cancel would: its owner's poll finds no job.
  expect((await fetch(exported, { headers: { authorization: `Bearer ${staff}` } })).status).toBe(404);
  // The other person's data are all still there: the erasure took only the person's.
  expect(
    scan(other)
      .filter((f) => f.needle === 'answer')
      .map((f) => f.file),
  ).toContain('fhir-store.sqlite');
});
