import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Patient, QuestionnaireResponse } from '@medplum/fhirtypes';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pgConnection } from '../../src/state';
import { awaitManifest, kickOff } from '../export/bulk';
import { baselineQuestionnaire, DAY, startFollowUpServer, taskAt } from '../followup/fixtures';
import { episode, submitAbout } from '../helpers/clinical';
import { bytesOf, filesUnder } from '../helpers/files';
import type { TestServer } from '../helpers/testServer';
import { fillResponse } from '../validation/responses';
import { ANSWER_SYSTEM, call, condition, ok, people, reservation } from './fixtures';

/**
 * Physical erasure reaches every file the server writes (DESIGN §3.2), not only the clinical store: after
 * a person with an episode, answers, follow-up Tasks, a sent invitation and a staff export reserves
 * themselves, no byte of their national id, registry Patient id, pseudonym or an answer unique to them is
 * left in any file under DATA_DIR (databases, their -wal/-shm/-journal, export files, the outbox, keys),
 * except what MAY_REMAIN names, each with why. The files are scanned while the server runs, as they are
 * when a reservation has been answered (stopping the server checkpoints the WALs, which would hide what
 * they kept).
 *
 * With the state on PostgreSQL (TEST_STATE=postgres) the state's rows are not under DATA_DIR: the files
 * of the test server's schema (tables, indexes, TOAST) in the cluster's data folder are scanned too,
 * after a CHECKPOINT, as test/consent/hapi-physical.test.ts scans HAPI's. That needs the data folder
 * (STATE_PGDATA, else $NORPAIN_CI_DIR/pg/data as scripts/ci/start-postgres.sh makes it) and a role that
 * may CHECKPOINT (HAPI_DATABASE_URL's, in CI); without them the test fails rather than scan less. The
 * write-ahead log (pg_wal) is not scanned: the rule that closes it is in docs/hapi.md.
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
    file: /^state\/audit_/,
    needles: ['Patient id', 'pseudonym'],
    why: 'the audit log, as above, in its PostgreSQL tables (STATE=postgres)',
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
const baseline = baselineQuestionnaire();

beforeAll(async () => {
  ({ server, clinic, staff } = await startFollowUpServer());
});
afterAll(() => server.stop());

/**
 * The files of the state's relations on PostgreSQL (none on SQLite, whose files are under DATA_DIR), by
 * `state/<relation>`: every table, index and TOAST relation of the test server's schema, each with its
 * 1 GB segments; written out by a CHECKPOINT first.
 */
async function stateFiles(): Promise<{ file: string; full: string }[]> {
  const state = server.config.state;
  if (state.kind !== 'postgres') return [];
  const pgdata =
    process.env.STATE_PGDATA ?? path.join(process.env.NORPAIN_CI_DIR ?? '/var/tmp/norpain-ci', 'pg', 'data');
  const checkpointUrl = process.env.HAPI_DATABASE_URL;
  if (!fs.existsSync(path.join(pgdata, 'base')) || checkpointUrl === undefined) {
    throw new Error(
      `STATE=postgres: scanning the state needs its cluster's data folder (STATE_PGDATA; ${pgdata} is not readable) and HAPI_DATABASE_URL (a role that may CHECKPOINT)`,
    );
  }
  const checkpoint = new pg.Client({ connectionString: checkpointUrl });
  await checkpoint.connect();
  try {
    await checkpoint.query('CHECKPOINT');
  } finally {
    await checkpoint.end();
  }
  const client = new pg.Client(pgConnection(state));
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; path: string }>(
      `WITH own AS (SELECT c.oid, c.relname, c.reltoastrelid FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i'))
       SELECT relname AS name, pg_relation_filepath(oid) AS path FROM own
       UNION ALL SELECT relname || '.toast', pg_relation_filepath(reltoastrelid) FROM own WHERE reltoastrelid <> 0
       UNION ALL SELECT o.relname || '.toast-index', pg_relation_filepath(i.indexrelid)
                 FROM own o JOIN pg_index i ON i.indrelid = o.reltoastrelid WHERE o.reltoastrelid <> 0`,
    );
    return rows.flatMap(({ name, path: relative }) => {
      const base = path.join(pgdata, relative);
      const segments = fs
        .readdirSync(path.dirname(base))
        .filter((f) => f === path.basename(base) || f.startsWith(`${path.basename(base)}.`));
      return segments.map((f) => ({ file: `state/${name}`, full: path.join(path.dirname(base), f) }));
    });
  } finally {
    await client.end();
  }
}

/** Every (file, needle) where the file's bytes hold the needle's text: files by their path in DATA_DIR,
 * the state's relations on PostgreSQL by `state/<relation>`. */
async function scan(needles: Record<Needle, string>): Promise<{ file: string; needle: Needle }[]> {
  const files = [
    ...filesUnder(server.dataDir).map((full) => ({
      file: path.relative(server.dataDir, full).split(path.sep).join('/'),
      full,
    })),
    ...(await stateFiles()),
  ];
  return files.flatMap(({ file, full }) => {
    const bytes = bytesOf(full);
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
  const before = await scan(person);
  expect([...new Set(before.map((f) => f.needle))].sort()).toEqual(Object.keys(person).sort());

  ok(await call(server, portal, 'POST', 'Consent', reservation(reserving)), 201);

  const left = (await scan(person)).filter(
    ({ file, needle }) => !MAY_REMAIN.some((may) => may.file.test(file) && may.needles.includes(needle)),
  );
  expect(left).toEqual([]);
  // The export that held the person is withdrawn, as a cancel would: its owner's poll finds no job.
  expect((await fetch(exported, { headers: { authorization: `Bearer ${staff}` } })).status).toBe(404);
  // The other person's data are still there (whichever the store): the erasure took only the person's.
  ok(await call(server, staff, 'GET', `Patient/${other['Patient id']}`), 200);
  const answers = ok(
    await call<Bundle>(server, staff, 'GET', `Condition?code=${ANSWER_SYSTEM}|${other.answer}`),
    200,
  );
  expect(answers.entry).toHaveLength(1);
});

// On SQLite only: the journal is a file under DATA_DIR there, and a reader can hold its WAL.
(process.env.TEST_STATE === 'postgres' ? test.skip : test)(
  'a scrub that cannot finish leaves the erasure pending, and its completion removes every copy',
  async () => {
    const [fnr] = people(9108, 1);
    const person = await registerPerson(fnr, 'svar-bare-denne-ga-3b8f11');
    const leftOver = async () =>
      (await scan(person)).filter(
        ({ file, needle }) => !MAY_REMAIN.some((may) => may.file.test(file) && may.needles.includes(needle)),
      );
    // Another process reading the write journal holds its write-ahead log, which then cannot be emptied.
    const reader = new Database(path.join(server.dataDir, 'write-journal.sqlite'), { readonly: true });
    try {
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM write_intent').get();
      const held = await call(server, staff, 'POST', 'Consent', reservation(fnr, { channel: 'letter' }));
      expect(held.status).toBe(503);
      expect((await leftOver()).map((f) => f.file)).toContain('write-journal.sqlite-wal');
    } finally {
      reader.close();
    }
    // The erasure stayed pending: the server's background recovery (every 30 s) completes it, scrubs
    // included, with no one sending anything again.
    let left = await leftOver();
    for (const until = Date.now() + 45_000; left.length > 0 && Date.now() < until; left = await leftOver()) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(left).toEqual([]);
  },
  90_000,
);
