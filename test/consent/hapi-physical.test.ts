import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import type { Bundle, Condition, Parameters, Patient } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { bytesOf, filesUnder } from '../helpers/files';
import { call, FNR_SYSTEM, people, reservation, submission, TAG_SYSTEM } from './fixtures';

/**
 * Physical erasure on HAPI FHIR JPA over PostgreSQL (DESIGN §3.2, §7): after a reservation, no byte of the
 * person is left in PostgreSQL's table and index files. Runs when HAPI_URL and HAPI_DATABASE_URL are set
 * and the cluster's data folder is readable (scripts/ci/start-postgres.sh: $NORPAIN_CI_DIR/pg/data, or
 * HAPI_PGDATA). The WAL (pg_wal) is not scanned: what it keeps, and the rule that closes it, is in
 * docs/hapi.md.
 */
const hapiUrl = process.env.HAPI_URL;
const databaseUrl = process.env.HAPI_DATABASE_URL;
const pgdata =
  process.env.HAPI_PGDATA ?? path.join(process.env.NORPAIN_CI_DIR ?? '/var/tmp/norpain-ci', 'pg', 'data');
const runs = hapiUrl !== undefined && databaseUrl !== undefined && fs.existsSync(path.join(pgdata, 'base'));

/** Which of `needles` some table or index file of the cluster holds, after a CHECKPOINT. */
async function foundInDataFiles(needles: string[]): Promise<string[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
  }
  const found = new Set<string>();
  for (const file of [...filesUnder(path.join(pgdata, 'base')), ...filesUnder(path.join(pgdata, 'global'))]) {
    const bytes = bytesOf(file);
    for (const needle of needles) {
      if (bytes.includes(needle)) {
        found.add(needle);
      }
    }
  }
  return [...found];
}

(runs ? describe : describe.skip)(
  `physical erasure on HAPI${runs ? '' : ' — SKIPPED, needs HAPI_URL, HAPI_DATABASE_URL and the PostgreSQL data folder'}`,
  () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        STORE: 'hapi',
        HAPI_URL: hapiUrl as string,
        HAPI_DATABASE_URL: databaseUrl as string,
      });
    });
    afterAll(async () => {
      await server?.stop();
    });

    /** A person (a national id no other run uses: the HAPI server is shared and keeps what others stored)
     * submitted by a clinic with these answers; what the scan looks for (not the tag: the test's own
     * search by it is in HAPI's search cache, and names no person). */
    async function submitPerson(answers: string[], offset: number) {
      const clinic = await server.token('clinic');
      const admin = await server.token('registry-admin');
      const fnr = people((Date.now() + offset) % 100_000, 1)[0];
      const tag = `hp-${randomUUID()}`;
      const submitted = await call(
        server,
        clinic,
        'POST',
        '',
        submission([{ system: FNR_SYSTEM, value: fnr }], tag, answers),
      );
      expect(submitted.status).toBe(200);
      const found = await call<Bundle<Condition>>(
        server,
        admin,
        'GET',
        `Condition?code=${TAG_SYSTEM}|${tag}`,
      );
      const patientId = found.body.entry?.[0]?.resource?.subject?.reference?.split('/')[1] as string;
      const pseudonym = (await call<Patient>(server, admin, 'GET', `Patient/${patientId}`)).body
        .identifier?.[0].value as string;
      return { clinic, fnr, needles: [pseudonym, patientId, ...answers] };
    }

    test('no table or index file holds the pseudonym, the Patient id or an answer of the person', async () => {
      const { clinic, fnr, needles } = await submitPerson(
        [`svar-${randomUUID()}`, `svar-${randomUUID()}`],
        0,
      );
      // The scan sees them before: it can fail.
      expect((await foundInDataFiles(needles)).sort()).toEqual([...needles].sort());

      const reply = await call<Parameters>(server, clinic, 'POST', 'Consent', reservation(fnr));
      expect(reply.status).toBe(201);
      expect(reply.body.parameter?.find((p) => p.name === 'residual')?.valueInteger).toBe(0);

      expect(await foundInDataFiles([...needles, fnr])).toEqual([]);
    });

    test('rows an open transaction may still see leave the erasure pending, and its completion removes them', async () => {
      const { clinic, fnr, needles } = await submitPerson([`svar-${randomUUID()}`], 50_000);
      // Another client of HAPI's database in a transaction whose snapshot is older than the erasure: the
      // rows the erasure deletes stay visible to it, so VACUUM FULL must keep them.
      const holder = new Client({ connectionString: databaseUrl });
      await holder.connect();
      try {
        await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await holder.query('SELECT 1');
        const held = await call(server, clinic, 'POST', 'Consent', reservation(fnr));
        expect(held.status).toBe(503);
        expect((await foundInDataFiles(needles)).length).toBeGreaterThan(0);
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
      }
      // The erasure stayed pending: the server's background recovery (every 30 s) completes it.
      let left = await foundInDataFiles([...needles, fnr]);
      for (const until = Date.now() + 45_000; left.length > 0 && Date.now() < until;) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        left = await foundInDataFiles([...needles, fnr]);
      }
      expect(left).toEqual([]);
    }, 90_000);
  },
);
