import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {
  Bundle,
  Patient,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Resource,
} from '@medplum/fhirtypes';
import { requestBackendToken } from '../../src/auth/clientAssertion';
import { awaitManifest, downloadFile, kickOff, type Bearer } from '../../src/export/client';
import { AGE_BAND_URL } from '../../src/research/project';
import { readUnits } from '../../src/units/units';
import { NORPAIN_QUESTIONNAIRE_URLS } from '../../src/validation/questionnaire';
import { generateCohort } from '../generators/cohort';
import { loadCohort } from '../generators/load';
import { reservation } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { approval, call, ok, putApproval } from '../research/fixtures';
import { authorised } from './bulk';
import { registerClient } from './clients';
import { runDuckDb, type PersonRow } from './duckdb';

/**
 * A researcher's export end to end, as a researcher does it: a SMART Backend Services token for the study,
 * kick-off, polling, the files downloaded to disk and loaded unchanged into DuckDB (Python `duckdb`), where
 * the example table is computed — per person: pain intensity (NRS, average last week) at baseline and at
 * 12 months, sex and age band — and checked against what FHIR search shows the same researcher. And what
 * another researcher of the same study, a `_type` outside the view and a reserved person get.
 */

const NRS = 'nrs-gjennomsnitt';
const STUDY = 'pain-outcomes';
const COHORT = { persons: 150, seed: 13, fromYear: 2021, toYear: 2024, reservedShare: 0.05 };

let server: TestServer;
let dataDir: string;
let work: string;
let bearer: Bearer;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-export-study-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-export-files-'));
  await loadCohort(dataDir, COHORT);
  server = await startTestServer({ DATA_DIR: dataDir });
  const staff = await server.token('registry-admin');
  const study = approval({
    id: STUDY,
    variables: [
      'Patient.gender',
      'QuestionnaireResponse.subject',
      `${NORPAIN_QUESTIONNAIRE_URLS.baseline}#${NRS}`,
      `${NORPAIN_QUESTIONNAIRE_URLS.followUp12m}#${NRS}`,
    ],
    ageBand: 10,
    precision: 'year',
    units: readUnits(server.config.unitsFile).map((u) => u.resh),
    period: { start: '2021-01-01', end: '2030-12-31' },
  });
  ok(await putApproval(server, staff, study), 201);
  const client = await registerClient(server.config.dataDir, {
    clientId: 'analyst-1',
    role: 'researcher',
    study: STUDY,
  });
  const { origin } = new URL(server.baseUrl);
  const token = await requestBackendToken(client, `${origin}/auth/token`, 'system/*.rs');
  bearer = async () => token.access_token;
});

afterAll(async () => {
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

/** Every resource a FHIR search returns to this bearer, following the next links. */
async function searchAll<T extends Resource>(query: string): Promise<T[]> {
  const out: T[] = [];
  let url: string | undefined = `${server.baseUrl}/${query}`;
  while (url !== undefined) {
    const response = await fetch(url, { headers: authorised(await bearer()) });
    const bundle = (await response.json()) as Bundle<T>;
    if (response.status !== 200)
      throw new Error(`search ${query}: ${response.status} ${JSON.stringify(bundle)}`);
    out.push(...(bundle.entry ?? []).map((e) => e.resource as T));
    url = bundle.link?.find((l) => l.relation === 'next')?.url;
  }
  return out;
}

/** The NRS answer of a response, wherever its item stands. */
function nrsOf(items: QuestionnaireResponseItem[] | undefined): number | undefined {
  for (const item of items ?? []) {
    if (item.linkId === NRS) return item.answer?.[0]?.valueInteger;
    const inner = nrsOf(item.item);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

const mean = (values: number[]) =>
  values.length === 0 ? null : Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 100) / 100;

/** The example table computed from what FHIR search shows the researcher. */
async function tableFromSearch(): Promise<PersonRow[]> {
  const patients = await searchAll<Patient>('Patient?_count=1000');
  const responses = await searchAll<QuestionnaireResponse>('QuestionnaireResponse?_count=1000');
  return patients
    .map((patient): PersonRow => {
      const band = patient.extension?.find((e) => e.url === AGE_BAND_URL)?.valueRange;
      const own = responses.filter((r) => r.subject?.reference === `Patient/${patient.id}`);
      const nrs = (url: string) =>
        mean(
          own
            .filter((r) => r.questionnaire?.split('|')[0] === url)
            .map((r) => nrsOf(r.item))
            .filter((v): v is number => v !== undefined),
        );
      return [
        patient.id as string,
        patient.gender ?? null,
        band === undefined ? null : `${band.low?.value}-${band.high?.value}`,
        nrs(NORPAIN_QUESTIONNAIRE_URLS.baseline),
        nrs(NORPAIN_QUESTIONNAIRE_URLS.followUp12m),
      ];
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Runs an export as the researcher and downloads its files into a new folder. */
async function exportInto(folder: string, query = ''): Promise<string> {
  const dir = path.join(work, folder);
  fs.mkdirSync(dir);
  const manifest = await awaitManifest(await kickOff(`${server.baseUrl}/$export${query}`, bearer), bearer, {
    maxWaitMs: 50,
  });
  const parts = new Map<string, number>();
  for (const file of manifest.output) {
    const n = (parts.get(file.type) ?? 0) + 1;
    parts.set(file.type, n);
    await downloadFile(file.url, bearer, path.join(dir, `${file.type}-${n}.ndjson`));
  }
  return dir;
}

test('the files load unchanged into DuckDB, and its table is what the study view holds', async () => {
  const dir = await exportInto('first');
  expect(fs.readdirSync(dir).sort()).toEqual(['Patient-1.ndjson', 'QuestionnaireResponse-1.ndjson']);
  const table = await runDuckDb(dir);
  const expected = await tableFromSearch();
  expect(table.length).toBeGreaterThan(50);
  // Not a table of blanks: most persons answered both forms.
  expect(table.filter((row) => row[3] !== null && row[4] !== null).length).toBeGreaterThan(20);
  expect(table.every((row) => row[2] !== null && /^\d+-\d+$/.test(row[2]))).toBe(true);
  expect(table).toEqual(expected);
});

describe('what a researcher cannot get', () => {
  it("another researcher's files, even of the same study (404)", async () => {
    const status = await kickOff(`${server.baseUrl}/$export?_type=Patient`, bearer);
    const manifest = await awaitManifest(status, bearer, { maxWaitMs: 50 });
    const colleague = await registerClient(server.config.dataDir, {
      clientId: 'analyst-2',
      role: 'researcher',
      study: STUDY,
    });
    const { access_token: other } = await requestBackendToken(
      colleague,
      `${new URL(server.baseUrl).origin}/auth/token`,
      'system/*.rs',
    );
    expect((await fetch(status, { headers: authorised(other) })).status).toBe(404);
    expect((await fetch(manifest.output[0].url, { headers: authorised(other) })).status).toBe(404);
    // A dev token of the same study and the same client id, but another health professional (HPR).
    const sameClient = await server.token('researcher', {
      study: STUDY,
      clientId: 'analyst-1',
      hpr: '9144889',
    });
    expect((await fetch(manifest.output[0].url, { headers: authorised(sameClient) })).status).toBe(404);
    expect((await fetch(manifest.output[0].url, { headers: authorised(await bearer()) })).status).toBe(200);
  });

  it('a _type outside the view: not approved (Condition) or not person data (400)', async () => {
    for (const type of ['Condition', 'AuditEvent', 'Consent']) {
      const response = await fetch(`${server.baseUrl}/$export?_type=${type}`, {
        headers: authorised(await bearer(), { prefer: 'respond-async' }),
      });
      expect(response.status).toBe(400);
      const outcome = (await response.json()) as { issue: { details?: { text?: string } }[] };
      expect(outcome.issue[0].details?.text).toMatch(/offers Patient, QuestionnaireResponse\.$/);
    }
  });

  it("the study's cohort is Group/{study id}; any other group is 404", async () => {
    const status = await kickOff(`${server.baseUrl}/Group/${STUDY}/$export?_type=Patient`, bearer);
    const manifest = await awaitManifest(status, bearer, { maxWaitMs: 50 });
    expect(manifest.output[0].count).toBe((await searchAll<Patient>('Patient?_count=1000')).length);
    for (const group of ['another-study', '999001']) {
      const response = await fetch(`${server.baseUrl}/Group/${group}/$export`, {
        headers: authorised(await bearer(), { prefer: 'respond-async' }),
      });
      expect(response.status).toBe(404);
    }
  });

  it('a person who reserves themselves is absent from the next export, and one made before is withdrawn', async () => {
    const before = await runDuckDb(await exportInto('before'));
    // An export made before the reservation holds the person by their project id alone (no registry id).
    const made = await kickOff(`${server.baseUrl}/$export`, bearer);
    await awaitManifest(made, bearer, { maxWaitMs: 50 });
    expect((await fetch(made, { headers: authorised(await bearer()) })).status).toBe(200);
    const person = [...generateCohort(COHORT)].find(
      (p) => !p.reserved && p.current.kind === 'fnr' && p.episodes.some((e) => e.baseline),
    );
    const staff = await server.token('registry-admin');
    ok(
      await call(
        server,
        staff,
        'POST',
        'Consent',
        reservation(person?.current.value as string, { channel: 'letter' }),
      ),
      201,
    );
    // Withdrawn as a cancel would: its owner's poll finds no job, and its files are gone.
    expect((await fetch(made, { headers: authorised(await bearer()) })).status).toBe(404);
    const dir = await exportInto('after');
    const after = await runDuckDb(dir);
    const gone = before.filter((row) => !after.some((other) => other[0] === row[0]));
    expect(gone).toHaveLength(1);
    expect(after).toHaveLength(before.length - 1);
    const files = fs
      .readdirSync(dir)
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
      .join('\n');
    expect(files).not.toContain(gone[0][0]);
  });
});
