import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, people } from '../consent/fixtures';
import { createTestSchema, dropTestSchema, schemaUrl, stateDatabaseUrl } from '../helpers/state';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { authorised, awaitManifest, download, kickOff, submitPerson } from './bulk';

/**
 * Bulk Data export across two replicas (STATE=postgres, one EXPORT_DIR volume): a job kicked off on A is
 * polled, downloaded and cancelled through B, and A then knows it no more; another client's token gets
 * 404 on either replica. The replicas are two servers in this process on one PostgreSQL state.
 */
jest.setTimeout(120_000);

const databaseUrl = stateDatabaseUrl;
(databaseUrl ? describe : describe.skip)('bulk export on two replicas', () => {
  let a: TestServer;
  let b: TestServer;
  let schema: string;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-export-replicas-'));
  const exportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-export-shared-'));

  beforeAll(async () => {
    schema = await createTestSchema(databaseUrl as string);
    // One store and one set of keys (the same DATA_DIR), each server a process's state of its own.
    const env = {
      DATA_DIR: dataDir,
      STATE: 'postgres',
      DATABASE_URL: schemaUrl(databaseUrl as string, schema),
      EXPORT_DIR: exportDir,
    };
    a = await startTestServer(env);
    b = await startTestServer(env);
    for (const [fnr, tag] of people(4811, 2).map((fnr, i) => [fnr, i === 0 ? 'R52' : 'M54'])) {
      await submitPerson(a, fnr, tag, ['A01']);
    }
  });
  afterAll(async () => {
    await a?.server.close();
    await b?.server.close();
    await dropTestSchema(databaseUrl as string, schema);
    for (const dir of [dataDir, exportDir]) fs.rmSync(dir, { recursive: true, force: true });
  });

  const onB = (url: string): string => url.replace(a.baseUrl, b.baseUrl);

  test('kicked off on A, polled, downloaded and cancelled on B', async () => {
    const staff = await a.token('registry-admin');
    const status = await kickOff(`${a.baseUrl}/$export?_type=Patient`, staff);
    const { manifest } = await awaitManifest(onB(status), staff);
    expect(manifest.output.map((f) => f.type)).toEqual(['Patient']);
    const patients = await download(onB(manifest.output[0].url), staff);
    expect(patients).toHaveLength(2);

    // Another client sees nothing of it, on either replica.
    const other = await a.token('registry-admin', { clientId: 'another-staff-client' });
    for (const server of [a, b]) {
      const polled = await fetch(status.replace(a.baseUrl, server.baseUrl), { headers: authorised(other) });
      expect(polled.status).toBe(404);
    }

    const cancelled = await fetch(onB(status), { method: 'DELETE', headers: authorised(staff) });
    expect(cancelled.status).toBe(202);
    expect((await fetch(status, { headers: authorised(staff) })).status).toBe(404);
    expect((await fetch(manifest.output[0].url, { headers: authorised(staff) })).status).toBe(404);
    expect(fs.readdirSync(exportDir)).toEqual([]);
    expect((await call(a, staff, 'GET', 'Patient?_count=1')).status).toBe(200);
  });
});
