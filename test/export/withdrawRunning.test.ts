import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Patient } from '@medplum/fhirtypes';
import { AuditLog, auditLogPath } from '../../src/audit/log';
import type { Principal } from '../../src/auth/principal';
import { openExport, type ExportServices, type ExportSource } from '../../src/export';
import {
  classify,
  type FhirOperation,
  type OperationCall,
  type OperationRequest,
} from '../../src/fhir/classify';
import type { InteractionContext } from '../../src/fhir/interactions';
import { isFhirError } from '../../src/fhir/outcomes';
import { createLogger } from '../../src/logging/logger';
import { ProjectPseudonyms } from '../../src/research/pseudonyms';
import { openState } from '../../src/state';

/**
 * A reservation withdraws an export that is still running, whatever its files hold: what it has read and
 * not yet written (the page of the store it is at, the chunk its file gets next) is out of sight of any
 * scan of its files. The export's services are the server's own (job store, engine, files, audit log);
 * its source is one that hands out a resource and then waits, so the job is running, deterministically,
 * when the reservation comes.
 */
const dir = mkdtempSync(join(tmpdir(), 'norpain-withdraw-running-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const staff: Principal = { role: 'registry-admin', clientId: 'staff-test', scopes: ['system/*.rs'] };
const someone: Patient = { resourceType: 'Patient', id: '3f0b6c1e-0000-4000-8000-000000000001' };
const erased = { patientId: '3f0b6c1e-0000-4000-8000-0000000000ff', pseudonym: '1-ERASED' };

/** A source of one Patient, then a wait until `release`; `reading` resolves when the wait begins. */
function gatedSource() {
  let release = () => {};
  let reading = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const waiting = new Promise<void>((resolve) => (reading = resolve));
  const source: ExportSource = {
    types: ['Patient'],
    hasGroup: () => false,
    async *stream() {
      yield Buffer.from(JSON.stringify(someone));
      reading();
      await released;
    },
  };
  return { source, release, waiting };
}

/** `GET [base]/<name>?<params>`, classified as the router classifies it. */
function request(
  name: string,
  operations: readonly FhirOperation[],
  params: Record<string, string> = {},
): OperationRequest<OperationCall> {
  const what = classify('GET', [name], operations);
  if (what.kind !== 'operation') throw new Error(`GET ${name} is not an operation call`);
  return {
    what,
    params: new URLSearchParams(params),
    header: (header) => (header.toLowerCase() === 'prefer' ? 'respond-async' : undefined),
    body: () => undefined,
  };
}

test('a reservation withdraws an export still running, though its files do not hold the person', async () => {
  let gate = gatedSource();
  const audit = AuditLog.open(auditLogPath(dir));
  const exports: ExportServices = openExport({
    dataDir: dir,
    config: { dir: join(dir, 'export'), ttlSeconds: 3600, maxFileBytes: 1 << 20 },
    audit,
    logger: createLogger({ level: 'silent', sink: () => undefined }),
    sourceFor: async () => gate.source,
    transactionTime: () => new Date().toISOString(),
    state: await openState({ kind: 'sqlite' }),
    projectPseudonyms: new ProjectPseudonyms(Buffer.alloc(32, 3)),
  });
  try {
    const ctx = { principal: staff, requestId: 'withdraw-running', base: 'http://localhost/fhir' };
    const handle = (name: string) => {
      const row = exports.operations.find((op) => op.name === name);
      if (row === undefined) throw new Error(`no ${name}`);
      return (params?: Record<string, string>) =>
        row.handle(ctx as InteractionContext, request(name, exports.operations, params));
    };
    /** Kicks off an export; its poll gives the status, or that of the 404 a withdrawn job gets. */
    const kickOff = async () => {
      const kickedOff = await handle('$export')();
      expect(kickedOff?.status).toBe(202);
      const location = new URL(String(kickedOff?.headers?.['Content-Location']));
      const jobId = location.searchParams.get('_jobId') as string;
      const poll = () =>
        handle('$export-poll-status')({ _jobId: jobId }).then(
          (response) => response?.status,
          (err: unknown) => {
            // The owner is told why a job may be gone, and to start it again.
            if (isFhirError(err)) expect(err.message).toMatch(/reserved themselves.*start the export again/);
            return isFhirError(err) ? err.status : 500;
          },
        );
      return { jobId, poll };
    };

    const running = await kickOff();
    await gate.waiting;
    expect(await running.poll()).toBe(202);
    expect(existsSync(join(dir, 'export', running.jobId))).toBe(true);
    // Withdrawn while its source waits: the cancel it makes waits for the job to stop, which the source
    // lets it do once released.
    const withdrawing = exports.withdrawHolding(erased);
    gate.release();
    expect(await withdrawing).toBe(1);
    expect(await running.poll()).toBe(404);
    expect(existsSync(join(dir, 'export', running.jobId))).toBe(false);
    const operations = audit
      .search({})
      .matches.flatMap((event) => event.subtype ?? [])
      .map((coding) => coding.code);
    expect(operations).toContain('$export-withdraw');

    // Finished, its files without the person: kept.
    gate = gatedSource();
    gate.release();
    const finished = await kickOff();
    while ((await finished.poll()) === 202) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await finished.poll()).toBe(200);
    expect(await exports.withdrawHolding(erased)).toBe(0);
    expect(await finished.poll()).toBe(200);
  } finally {
    await exports.close();
    audit.close();
  }
});
