import fs from 'node:fs';
import path from 'node:path';
import type { AuditEvent, Bundle, CapabilityStatement, Patient } from '@medplum/fhirtypes';
import { call, ok, people, reservation } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { authorised, awaitManifest, download, downloadAll, kickOff, submitPerson } from './bulk';

/**
 * Bulk Data export as registry staff (their view: every unit's pseudonymised data), through HTTP: the
 * IG's kick-off, status and download, and what must fail — another client's files, a cancelled job, a
 * `_type` outside the view, a kick-off without `Prefer`, a reserved person, expired files.
 */

let server: TestServer;
let staff: string;
const [alice, bob, reserved] = people(4711, 3);

beforeAll(async () => {
  server = await startTestServer({ EXPORT_TTL_SECONDS: '3600' });
  staff = await server.token('registry-admin');
  for (const [fnr, tag] of [
    [alice, 'R52'],
    [bob, 'M54'],
    [reserved, 'G44'],
  ]) {
    await submitPerson(server, fnr, tag, ['A01', 'L03']);
  }
  ok(await call(server, staff, 'POST', 'Consent', reservation(reserved, { channel: 'letter' })), 201);
});

afterAll(async () => {
  await server.stop();
});

function exportDir(): string {
  return path.join(server.dataDir, 'export', 'files');
}

describe('a staff export', () => {
  it('kicks off, reports progress, lists one file per type and serves them as NDJSON', async () => {
    const status = await kickOff(`${server.baseUrl}/$export?_type=Patient,Condition`, staff);
    expect(status).toMatch(/\/fhir\/\$export-poll-status\?_jobId=[0-9a-f-]{36}$/);
    const { manifest } = await awaitManifest(status, staff);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toBe(`${server.baseUrl}/$export?_type=Patient%2CCondition`);
    expect(Date.parse(manifest.transactionTime)).not.toBeNaN();
    expect(manifest.error).toEqual([]);
    expect(manifest.output.map((f) => f.type)).toEqual(['Patient', 'Condition']);

    const files = await downloadAll(manifest, staff);
    const search = ok(await call<Bundle>(server, staff, 'GET', 'Patient?_count=100'), 200);
    const patients = (files.get('Patient') ?? []) as Patient[];
    expect(patients.map((p) => p.id).sort()).toEqual((search.entry ?? []).map((e) => e.resource?.id).sort());
    expect(patients).toHaveLength(2);
    // Each exactly as a read shows it to staff.
    for (const patient of patients) {
      expect(patient).toEqual(ok(await call(server, staff, 'GET', `Patient/${patient.id}`), 200));
    }
    expect(files.get('Condition')).toHaveLength(4);
    expect(manifest.output.find((f) => f.type === 'Condition')?.count).toBe(4);
    // Pseudonymised as stored: no national id anywhere in the files.
    const text = JSON.stringify([...files.values()]);
    for (const fnr of [alice, bob, reserved]) expect(text).not.toContain(fnr);

    const response = await fetch(manifest.output[0].url, { headers: authorised(staff) });
    expect(response.headers.get('content-type')).toBe('application/fhir+ndjson');
  });

  it('leaves out a person who has reserved themselves', async () => {
    const { manifest } = await awaitManifest(await kickOff(`${server.baseUrl}/$export`, staff), staff);
    const files = await downloadAll(manifest, staff);
    const codes = (files.get('Condition') ?? [])
      .flatMap((c) => (c as { code?: { coding?: { code?: string }[] } }).code?.coding ?? [])
      .map((c) => c.code);
    expect(codes).toEqual(expect.arrayContaining(['R52', 'M54']));
    expect(codes).not.toContain('G44');
    expect(files.get('Patient')).toHaveLength(2);
  });

  it('exports a unit as Group/{RESH}, and answers 404 for a group that does not exist', async () => {
    const { manifest } = await awaitManifest(
      await kickOff(`${server.baseUrl}/Group/999001/$export?_type=EpisodeOfCare`, staff),
      staff,
    );
    expect((await downloadAll(manifest, staff)).get('EpisodeOfCare')).toHaveLength(2);
    const missing = await fetch(`${server.baseUrl}/Group/424242/$export`, {
      headers: authorised(staff, { prefer: 'respond-async' }),
    });
    expect(missing.status).toBe(404);
  });

  it('exports with _since only what changed after it', async () => {
    const later = new Date(Date.now() + 60_000).toISOString();
    const { manifest } = await awaitManifest(
      await kickOff(`${server.baseUrl}/$export?_since=${encodeURIComponent(later)}`, staff),
      staff,
    );
    expect(manifest.output).toEqual([]);
  });
});

describe('what an export refuses', () => {
  const kickOffReply = async (query: string, headers: Record<string, string>) => {
    const response = await fetch(`${server.baseUrl}/$export${query}`, {
      headers: authorised(staff, headers),
    });
    return {
      status: response.status,
      body: (await response.json()) as { resourceType: string; issue: { details?: { text?: string } }[] },
    };
  };

  it('a kick-off without Prefer: respond-async (400, no job)', async () => {
    const reply = await kickOffReply('', {});
    expect(reply.status).toBe(400);
    expect(reply.body.issue[0].details?.text).toMatch(/Prefer: respond-async/);
  });

  it.each([
    ['_type outside the view', '?_type=AuditEvent'],
    ['_type of no resource type', '?_type=Nonsense'],
    ['an output format other than NDJSON', '?_outputFormat=text/csv'],
    ['a parameter the server does not support', '?_typeFilter=Condition%3Fcode%3DR52'],
    ['a _since that is not an instant', '?_since=yesterday'],
  ])('%s (400 OperationOutcome)', async (_what, query) => {
    const reply = await kickOffReply(query, { prefer: 'respond-async' });
    expect(reply.status).toBe(400);
    expect(reply.body.resourceType).toBe('OperationOutcome');
  });

  it('a clinic or the portal (403)', async () => {
    for (const role of ['clinic', 'portal'] as const) {
      const response = await fetch(`${server.baseUrl}/$export`, {
        headers: authorised(await server.token(role), { prefer: 'respond-async' }),
      });
      expect(response.status).toBe(403);
    }
  });

  it("another client's status and files (404, as if they did not exist)", async () => {
    const status = await kickOff(`${server.baseUrl}/$export?_type=Patient`, staff);
    const { manifest } = await awaitManifest(status, staff);
    const other = await server.token('registry-admin', { clientId: 'another-staff-client' });
    expect((await fetch(status, { headers: authorised(other) })).status).toBe(404);
    expect((await fetch(manifest.output[0].url, { headers: authorised(other) })).status).toBe(404);
    expect((await fetch(status, { method: 'DELETE', headers: authorised(other) })).status).toBe(404);
    // The owner still has them.
    expect(await download(manifest.output[0].url, staff)).toHaveLength(2);
  });

  it('a file name that is not in the manifest (404)', async () => {
    const { manifest } = await awaitManifest(
      await kickOff(`${server.baseUrl}/$export?_type=Patient`, staff),
      staff,
    );
    for (const name of ['Condition-1.ndjson', '..%2F..%2Fjobs.sqlite', 'Patient-1.ndjson%00']) {
      const url = manifest.output[0].url.replace(/file=[^&]+/, `file=${name}`);
      expect((await fetch(url, { headers: authorised(staff) })).status).toBe(404);
    }
  });
});

describe('cancel and expiry', () => {
  it('DELETE cancels: 202, the files are deleted and the status answers 404', async () => {
    const status = await kickOff(`${server.baseUrl}/$export`, staff);
    const { manifest } = await awaitManifest(status, staff);
    const jobId = new URL(status).searchParams.get('_jobId') as string;
    expect(fs.existsSync(path.join(exportDir(), jobId))).toBe(true);
    expect((await fetch(status, { method: 'DELETE', headers: authorised(staff) })).status).toBe(202);
    expect(fs.existsSync(path.join(exportDir(), jobId))).toBe(false);
    expect((await fetch(status, { headers: authorised(staff) })).status).toBe(404);
    expect((await fetch(manifest.output[0].url, { headers: authorised(staff) })).status).toBe(404);
  });

  it('expired files are deleted from disk by the sweeper, and audited', async () => {
    const short = await startTestServer({ EXPORT_TTL_SECONDS: '1' });
    try {
      await submitPerson(short, alice, 'R52', ['A01']);
      const token = await short.token('registry-admin');
      const status = await kickOff(`${short.baseUrl}/$export`, token);
      const { manifest } = await awaitManifest(status, token);
      const jobDir = path.join(
        short.dataDir,
        'export',
        'files',
        new URL(status).searchParams.get('_jobId') as string,
      );
      expect(fs.readdirSync(path.join(jobDir, 'files')).length).toBe(manifest.output.length);
      while (fs.existsSync(jobDir)) await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await fetch(status, { headers: authorised(token) })).status).toBe(404);
      expect((await fetch(manifest.output[0].url, { headers: authorised(token) })).status).toBe(404);
      const events = ok(await call<Bundle<AuditEvent>>(short, token, 'GET', 'AuditEvent?_count=1000'), 200);
      const codes = (events.entry ?? []).flatMap((e) => e.resource?.subtype ?? []).map((c) => c.code);
      expect(codes).toContain('$export-expire');
    } finally {
      await short.stop();
    }
  });
});

describe('the audit of an export', () => {
  it('records the kick-off, each poll, each download, the end and the cancel', async () => {
    const status = await kickOff(`${server.baseUrl}/$export?_type=Patient`, staff);
    const { manifest } = await awaitManifest(status, staff);
    await download(manifest.output[0].url, staff);
    await fetch(status, { method: 'DELETE', headers: authorised(staff) });
    const events = ok(await call<Bundle<AuditEvent>>(server, staff, 'GET', 'AuditEvent?_count=1000'), 200);
    const operations = (events.entry ?? [])
      .flatMap((entry) => entry.resource?.subtype ?? [])
      .filter((coding) => coding.system === 'urn:norpain:operation')
      .map((coding) => coding.code);
    for (const step of ['$export', '$export-poll-status', '$export-file', '$export-complete']) {
      expect(operations).toContain(step);
    }
  });
});

describe('files split at EXPORT_MAX_FILE_BYTES', () => {
  it('starts a new file of the type before one would grow past it, and counts each', async () => {
    const small = await startTestServer({ EXPORT_MAX_FILE_BYTES: '1kb' });
    try {
      await submitPerson(small, alice, 'R52', ['A01', 'A02', 'A03', 'L01', 'L02']);
      const token = await small.token('registry-admin');
      const { manifest } = await awaitManifest(
        await kickOff(`${small.baseUrl}/$export?_type=Condition`, token),
        token,
      );
      expect(manifest.output.length).toBeGreaterThan(1);
      let total = 0;
      for (const file of manifest.output) {
        expect(file.type).toBe('Condition');
        const response = await fetch(file.url, { headers: authorised(token) });
        const text = await response.text();
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024);
        expect(text.trim().split('\n')).toHaveLength(file.count as number);
        total += file.count as number;
      }
      expect(total).toBe(5);
    } finally {
      await small.stop();
    }
  });
});

describe('the CapabilityStatement', () => {
  it('names the export at system, Patient and Group level, and which Group ids exist', async () => {
    const capability = (await (await fetch(`${server.baseUrl}/metadata`)).json()) as CapabilityStatement;
    const rest = capability.rest?.[0];
    expect(capability.instantiates).toContain(
      'http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data',
    );
    expect(rest?.operation?.map((o) => o.definition)).toContain(
      'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export',
    );
    const group = rest?.resource?.find((r) => r.type === 'Group')?.operation?.[0];
    expect(group?.definition).toBe('http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export');
    expect(group?.documentation).toMatch(/Group\/\{study id\}.*Group\/\{RESH id\}/);
    expect(rest?.resource?.find((r) => r.type === 'Patient')?.operation?.[0]?.name).toBe('export');
  });
});
