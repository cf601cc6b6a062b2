import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Bundle, Patient, Resource } from '@medplum/fhirtypes';
import { ConfigError } from '../../src/config/ConfigError';
import { loadResearchKey } from '../../src/research/pseudonyms';
import { people, reservation } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import {
  approval,
  call,
  ok,
  projectId,
  putApproval,
  questionnaire,
  RUN,
  submitPerson,
  UNIT_A,
  type Person,
} from './fixtures';

/**
 * Project ids are the registry ids encrypted under a study's key (src/research/pseudonyms.ts): nothing
 * remembers them, so they survive a restart and a pseudonym key rotation unchanged, and an erased
 * person's ids name nothing and are held nowhere.
 */
const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');
const q = questionnaire();
const variables = ['Patient.gender', 'QuestionnaireResponse.subject', `${q.url}#smerte`];
const studyA = approval({ id: `ids-a-${RUN}`, variables });
const studyB = approval({ id: `ids-b-${RUN}`, variables });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-research-ids-'));
const RETIRED = path.join(dataDir, 'research.sqlite');

let server: TestServer;
let alice: Person;
let carl: Person;

beforeAll(async () => {
  // What an earlier version left: its table of handed-out ids.
  fs.writeFileSync(RETIRED, 'SQLite format 3\u0000 project_id rows');
  fs.writeFileSync(`${RETIRED}-wal`, 'wal');
  server = await startTestServer({ DATA_DIR: dataDir });
  const staff = await server.token('registry-admin');
  ok(await call(server, staff, 'PUT', `Questionnaire/${q.id}`, q), 201);
  ok(await putApproval(server, staff, studyA), 201);
  ok(await putApproval(server, staff, studyB), 201);
  const clinic = await server.token('clinic', { org: UNIT_A });
  const [a, c] = people(1317, 2);
  alice = await submitPerson(server, clinic, a, UNIT_A);
  carl = await submitPerson(server, clinic, c, UNIT_A);
}, 180_000);

afterAll(async () => {
  await server?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const tokenOf = (study: { id?: string }) => server.token('researcher', { study: study.id });
const ids = (bundle: Bundle) => (bundle.entry ?? []).map((e) => (e.resource as Resource).id as string);

/** The ids of this run's answers and their persons, as the server lists them to the study's researcher
 * (the run's own Questionnaire: a shared HAPI server holds other runs' persons at the same unit). */
async function shownIds(study: { id?: string }): Promise<string[]> {
  const token = await tokenOf(study);
  const bundle = ok(
    await call<Bundle>(
      server,
      token,
      'GET',
      `QuestionnaireResponse?questionnaire=${q.url}&_include=QuestionnaireResponse:subject&_count=50`,
    ),
    200,
  );
  return ids(bundle).sort();
}

test('the table of handed-out ids an earlier version kept is removed on start', () => {
  expect(fs.existsSync(RETIRED)).toBe(false);
  expect(fs.existsSync(`${RETIRED}-wal`)).toBe(false);
  expect(server.logs.some((l) => String(l.msg).startsWith('Removed the retired table of project ids'))).toBe(
    true,
  );
});

test('ids are stable across a restart and `norpain rekey`, and differ between studies', async () => {
  const beforeA = await shownIds(studyA);
  const beforeB = await shownIds(studyB);
  expect(beforeA).toHaveLength(4); // Alice and Carl, each a Patient and an answer
  expect(beforeA.every((id) => /^[a-p]{32}$/.test(id))).toBe(true);
  expect(beforeB.filter((id) => beforeA.includes(id))).toEqual([]);
  expect(beforeA).toContain(projectId(server, studyA.id as string, 'Patient', alice.patient));

  await server.stop();
  // The command works on the same store and state as the server did (HAPI, PostgreSQL in those CI runs).
  const { store, state } = server.config;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    ...(store.kind === 'hapi'
      ? {
          STORE: 'hapi',
          HAPI_URL: store.url,
          ...(store.databaseUrl ? { HAPI_DATABASE_URL: store.databaseUrl } : {}),
        }
      : {}),
    ...(state.kind === 'postgres' ? { STATE: 'postgres', DATABASE_URL: state.databaseUrl } : {}),
  };
  await server.stop();
  const rekeyed = await run(process.execPath, [BIN, 'rekey', '--new-key'], { env });
  expect(rekeyed.stdout).toContain('re-keyed 2 of 2 persons to key version 2');
  server = await startTestServer({ DATA_DIR: dataDir });
  // The rotation happened: the registry pseudonym is now of key version 2.
  const staff = await server.token('registry-admin');
  const stored = ok(await call<Patient>(server, staff, 'GET', `Patient/${alice.patient}`), 200);
  expect(stored.identifier?.[0].value).toMatch(/^2-/);

  expect(await shownIds(studyA)).toEqual(beforeA);
  expect(await shownIds(studyB)).toEqual(beforeB);
  const token = await tokenOf(studyA);
  const patient = projectId(server, studyA.id as string, 'Patient', alice.patient);
  const response = projectId(server, studyA.id as string, 'QuestionnaireResponse', alice.response);
  ok(await call(server, token, 'GET', `Patient/${patient}`), 200);
  ok(await call(server, token, 'GET', `QuestionnaireResponse/${response}`), 200);
}, 180_000);

test('unknown, foreign and guessed ids get the 404 of an id of nothing', async () => {
  const token = await tokenOf(studyA);
  const nothing = await call(server, token, 'GET', `Patient/${'a'.repeat(32)}`);
  expect(nothing.status).toBe(404);
  for (const id of [
    projectId(server, studyB.id as string, 'Patient', alice.patient), // study B's id of her
    projectId(server, studyA.id as string, 'QuestionnaireResponse', alice.response), // an answer's id as a Patient
    alice.patient, // the registry id
    'p'.repeat(32),
    'q'.repeat(32), // not a project id at all
    'a'.repeat(31),
  ]) {
    const reply = await call(server, token, 'GET', `Patient/${id}`);
    expect([id, reply.status, reply.text]).toEqual([id, 404, nothing.text]);
  }
  const foreign = projectId(server, studyB.id as string, 'Patient', alice.patient);
  const searched = ok(
    await call<Bundle>(server, token, 'GET', `QuestionnaireResponse?subject=${foreign}`),
    200,
  );
  expect(searched.entry ?? []).toEqual([]);
  // Her own id in a bare reference search finds her answer (the search maps it back).
  const own = projectId(server, studyA.id as string, 'Patient', alice.patient);
  const found = ok(await call<Bundle>(server, token, 'GET', `QuestionnaireResponse?subject=${own}`), 200);
  expect(ids(found)).toEqual([
    projectId(server, studyA.id as string, 'QuestionnaireResponse', alice.response),
  ]);
});

test('an erased person’s ids name nothing, and no file under DATA_DIR holds them', async () => {
  const carlIds = [studyA, studyB].flatMap((study) => [
    projectId(server, study.id as string, 'Patient', carl.patient),
    projectId(server, study.id as string, 'QuestionnaireResponse', carl.response),
  ]);
  const staff = await server.token('registry-admin');
  const [, fnr] = people(1317, 2);
  expect((await call(server, staff, 'POST', 'Consent', reservation(fnr, { channel: 'letter' }))).status).toBe(
    201,
  );
  for (const [study, patient, response] of [
    [studyA, carlIds[0], carlIds[1]],
    [studyB, carlIds[2], carlIds[3]],
  ] as const) {
    const token = await tokenOf(study);
    expect((await call(server, token, 'GET', `Patient/${patient}`)).status).toBe(404);
    expect((await call(server, token, 'GET', `QuestionnaireResponse/${response}`)).status).toBe(404);
  }
  expect(await shownIds(studyA)).toEqual(
    [
      projectId(server, studyA.id as string, 'Patient', alice.patient),
      projectId(server, studyA.id as string, 'QuestionnaireResponse', alice.response),
    ].sort(),
  );
  // Nothing of the research side remembers him: no file holds any of his project ids, and the research
  // side keeps no file but its key (the registry ids other parts keep, such as the audit log's, are theirs).
  const files = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  const holding = files(dataDir).filter((file) => {
    const bytes = fs.readFileSync(file);
    return carlIds.some((id) => bytes.includes(id));
  });
  expect(holding.map((f) => path.relative(dataDir, f))).toEqual([]);
  const research = files(dataDir).filter((f) => /research/.test(path.relative(dataDir, f)));
  expect(research.map((f) => path.relative(dataDir, f))).toEqual([path.join('keys', 'research-key')]);
});

test('the research key is required in production, and read as configured', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-research-key-'));
  try {
    expect(() => loadResearchKey({ env: {}, production: true, dataDir: dir })).toThrow(ConfigError);
    expect(fs.existsSync(path.join(dir, 'keys'))).toBe(false);
    const key = Buffer.alloc(32, 3);
    const env = { RESEARCH_KEY: key.toString('base64') };
    expect(loadResearchKey({ env, production: true, dataDir: dir }).equals(key)).toBe(true);
    expect(() =>
      loadResearchKey({ env: { RESEARCH_KEY: 'c2hvcnQ=' }, production: true, dataDir: dir }),
    ).toThrow(/32 random bytes/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
