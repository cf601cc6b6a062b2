import type { OperationOutcome, Patient } from '@medplum/fhirtypes';
import { call, FNR_SYSTEM, people } from '../consent/fixtures';
import { createTestSchema, dropTestSchema, schemaUrl, stateDatabaseUrl } from '../helpers/state';
import { TcpProxy } from '../helpers/tcpProxy';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * The state database lost (STATE=postgres): the network between the server and PostgreSQL is cut (a
 * proxy in between, so no database others use is touched). Clients get 503 with Retry-After and a
 * transient OperationOutcome, never a 500; a write in that moment stores nothing; /readyz says unavailable;
 * once the database is back, the same write succeeds.
 */
jest.setTimeout(120_000);

const databaseUrl = stateDatabaseUrl;
(databaseUrl ? describe : describe.skip)('the state database lost', () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let schema: string;

  beforeAll(async () => {
    const target = new URL(databaseUrl as string);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    schema = await createTestSchema(databaseUrl as string);
    // Through the proxy.
    const url = new URL(schemaUrl(databaseUrl as string, schema));
    url.port = String(proxy.port);
    server = await startTestServer({ STATE: 'postgres', DATABASE_URL: url.toString() });
  });
  afterAll(async () => {
    await server?.stop();
    proxy?.stop();
    await dropTestSchema(databaseUrl as string, schema);
  });

  const patient = (fnr: string): Patient => ({
    resourceType: 'Patient',
    identifier: [{ system: FNR_SYSTEM, value: fnr }],
    gender: 'female',
  });

  test('503 with Retry-After, nothing written, not ready; all well once it is back', async () => {
    const clinic = await server.token('clinic');
    const [before, during] = people(5101, 2);
    expect((await call(server, clinic, 'POST', 'Patient', patient(before))).status).toBe(201);

    await proxy.cut();
    const refused = await fetch(`${server.baseUrl}/Patient`, {
      method: 'POST',
      headers: { authorization: `Bearer ${clinic}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(patient(during)),
    });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const outcome = (await refused.json()) as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0]).toMatchObject({ severity: 'error', code: 'transient' });
    expect(JSON.stringify(outcome)).not.toMatch(/at \w+ \(|ECONNREFUSED|postgres:\/\//);
    // A read needs the state too (the audit log): 503 as well, not 500.
    expect((await call(server, clinic, 'GET', `Patient?identifier=${FNR_SYSTEM}|${before}`)).status).toBe(
      503,
    );
    expect((await fetch(`${server.origin}/readyz`)).status).toBe(503);

    await proxy.restore();
    expect((await fetch(`${server.origin}/readyz`)).status).toBe(200);
    // The write refused while the state was gone left nothing: its person is not found.
    const found = await call<{ total?: number; entry?: unknown[] }>(
      server,
      clinic,
      'GET',
      `Patient?identifier=${FNR_SYSTEM}|${during}`,
    );
    expect(found.status).toBe(200);
    expect(found.body.entry ?? []).toHaveLength(0);
    expect((await call(server, clinic, 'POST', 'Patient', patient(during))).status).toBe(201);
    const stored = await call<{ entry?: unknown[] }>(
      server,
      clinic,
      'GET',
      `Patient?identifier=${FNR_SYSTEM}|${during}`,
    );
    expect(stored.body.entry ?? []).toHaveLength(1);
  });
});
