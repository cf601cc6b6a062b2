import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Operator } from '@medplum/core';
import type { Bundle, Organization } from '@medplum/fhirtypes';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logging/logger';
import { createServer } from '../../src/server';
import { isParticipatingUnit, readUnits, RESH_SYSTEM } from '../../src/units/units';
import { startTestServer, SYNTHETIC_FNR, type TestServer } from '../helpers/testServer';

const FHIR_JSON = 'application/fhir+json';

describe('the assembled server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  test('/healthz says the process is up and /readyz that the store answers', async () => {
    const health = await fetch(`${server.origin}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', store: 'embedded', state: 'sqlite' });
    expect(health.headers.get('x-powered-by')).toBeNull();
    expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('metadata needs no token; /fhir/Patient without one is a 401 OperationOutcome', async () => {
    const metadata = await fetch(`${server.baseUrl}/metadata`, { headers: { accept: FHIR_JSON } });
    expect(metadata.status).toBe(200);
    expect(((await metadata.json()) as { resourceType: string }).resourceType).toBe('CapabilityStatement');

    const anonymous = await fetch(`${server.baseUrl}/Patient`, { headers: { accept: FHIR_JSON } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect(await anonymous.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'login', details: { text: expect.stringContaining('Bearer') } }],
    });

    const garbage = await fetch(`${server.baseUrl}/Patient`, {
      headers: { authorization: 'Bearer not.a.token', accept: FHIR_JSON },
    });
    expect(garbage.status).toBe(401);
  });

  test('a dev token from the helper is accepted', async () => {
    const token = await server.token('registry-admin');
    const search = await fetch(`${server.baseUrl}/Patient`, {
      headers: { authorization: `Bearer ${token}`, accept: FHIR_JSON },
    });
    expect(search.status).toBe(200);
    expect(((await search.json()) as Bundle).type).toBe('searchset');
  });

  test('/metrics counts requests by method, route pattern and status, in Prometheus text, with no id', async () => {
    const token = await server.token('registry-admin');
    const id = 'metrics-probe-4711';
    const missing = await fetch(`${server.baseUrl}/Organization/${id}`, {
      headers: { authorization: `Bearer ${token}`, accept: FHIR_JSON },
    });
    expect(missing.status).toBe(404);
    const metrics = await fetch(`${server.origin}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(
      /norpain_http_requests_total\{method="GET",route="\/fhir\/Organization\/:id",status="404"\} 1/,
    );
    expect(text).toMatch(/norpain_http_request_duration_seconds_bucket\{/);
    expect(text).not.toContain(id);
  });

  test('the five participating units are in the store as Organizations with RESH identifiers', async () => {
    const units = readUnits();
    expect(units.map((u) => u.alias)).toEqual(['St. Olavs', 'Haukeland', 'UNN', 'Helse Førde', 'Ahus']);
    const token = await server.token('registry-admin');
    for (const unit of units) {
      const response = await fetch(
        `${server.baseUrl}/Organization?identifier=${encodeURIComponent(`${RESH_SYSTEM}|${unit.resh}`)}`,
        { headers: { authorization: `Bearer ${token}`, accept: FHIR_JSON } },
      );
      const bundle = (await response.json()) as Bundle<Organization>;
      expect(bundle.entry?.map((e) => e.resource?.name)).toEqual([unit.name]);
    }
    expect(isParticipatingUnit(units[0].resh)).toBe(true);
    expect(isParticipatingUnit('123456789')).toBe(false);
  });

  test('unknown paths outside /fhir get a 404 OperationOutcome', async () => {
    const response = await fetch(`${server.origin}/admin`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain(FHIR_JSON);
    expect(((await response.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  test('one JSON log line per request: method, route pattern, status, duration, id; no body, query or identifier', async () => {
    const token = await server.token('clinic');
    const patient = {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: SYNTHETIC_FNR }],
      name: [{ family: 'Loggtestesen' }],
    };
    const headers = { authorization: `Bearer ${token}`, 'content-type': FHIR_JSON, accept: FHIR_JSON };
    const requestId = 'log-test-1';
    const before = server.logs.length;
    const created = await fetch(`${server.baseUrl}/Patient`, {
      method: 'POST',
      headers: { ...headers, 'x-request-id': requestId },
      body: JSON.stringify(patient),
    });
    await created.text();
    const location = created.headers.get('location') ?? '';
    const id = /Patient\/([^/]+)/.exec(location)?.[1] ?? 'no-id';
    await (
      await fetch(`${server.baseUrl}/Patient?identifier=${SYNTHETIC_FNR}&name=Loggtestesen`, {
        headers: { ...headers, 'x-request-id': 'log-test-2' },
      })
    ).text();
    await (
      await fetch(`${server.baseUrl}/Patient/${id}`, {
        headers: { ...headers, 'x-request-id': 'log-test-3' },
      })
    ).text();
    // A client-supplied id that is not plain is replaced rather than logged.
    await (
      await fetch(`${server.origin}/healthz`, { headers: { 'x-request-id': 'bad id {"level":"x"}' } })
    ).text();

    const lines = server.logs.slice(before).filter((line) => line.msg === 'request');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toEqual({
      time: expect.any(String),
      level: 'info',
      msg: 'request',
      method: 'POST',
      route: '/fhir/Patient',
      status: created.status,
      durationMs: expect.any(Number),
      requestId,
    });
    expect(lines.map((l) => [l.method, l.route, l.requestId])).toEqual([
      ['POST', '/fhir/Patient', 'log-test-1'],
      ['GET', '/fhir/Patient', 'log-test-2'],
      ['GET', '/fhir/Patient/:id', 'log-test-3'],
      ['GET', '/healthz', expect.stringMatching(/^[0-9a-f-]{36}$/)],
    ]);
    const text = JSON.stringify(server.logs.slice(before));
    for (const secret of [SYNTHETIC_FNR, 'Loggtestesen', id, token.slice(0, 20), 'identifier=']) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('start-up', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));
  const quiet = createLogger({ level: 'silent' });

  test('units are upserted: a restart changes nothing, a renamed unit is updated in place', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-units-'));
    dirs.push(dataDir);
    const lines: string[] = [];
    const logger = createLogger({ sink: (line) => lines.push(line) });
    const first = await createServer(loadConfig({ DATA_DIR: dataDir }), { logger });
    await first.close();
    const second = await createServer(loadConfig({ DATA_DIR: dataDir }), { logger });
    await second.close();
    const unitLines = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'participating units loaded');
    expect(unitLines.map(({ created, updated, unchanged }) => ({ created, updated, unchanged }))).toEqual([
      { created: 5, updated: 0, unchanged: 0 },
      { created: 0, updated: 0, unchanged: 5 },
    ]);

    const units = JSON.parse(fs.readFileSync(loadConfig({}).unitsFile, 'utf8')) as {
      units: { name: string }[];
    };
    units.units[0].name = 'Smertesenteret, St. Olavs hospital (renamed)';
    const unitsFile = path.join(dataDir, 'units.json');
    fs.writeFileSync(unitsFile, JSON.stringify(units));
    const third = await createServer(loadConfig({ DATA_DIR: dataDir, UNITS_FILE: unitsFile }), {
      logger: quiet,
    });
    const found = await third.store.search<Organization>({
      resourceType: 'Organization',
      filters: [{ code: 'identifier', operator: Operator.EQUALS, value: `${RESH_SYSTEM}|999001` }],
    });
    await third.close();
    expect(found.matches.map((o) => [o.name, o.meta?.versionId !== undefined])).toEqual([
      ['Smertesenteret, St. Olavs hospital (renamed)', true],
    ]);
    expect(isParticipatingUnit('999001', unitsFile)).toBe(true);
  });

  test('a malformed units file stops the start with a message naming the entry', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-units-'));
    dirs.push(dataDir);
    const unitsFile = path.join(dataDir, 'units.json');
    fs.writeFileSync(unitsFile, JSON.stringify({ units: [{ resh: 'abc', name: 'X' }] }));
    await expect(
      createServer(loadConfig({ DATA_DIR: dataDir, UNITS_FILE: unitsFile }), { logger: quiet }),
    ).rejects.toThrow('units[0].resh must be a string of 1-9 digits');
  });
});
