import { spawn } from 'node:child_process';
import path from 'node:path';
import { runAuditVerify } from '../../src/audit/verifyCommand';
import { event, openTempLog } from './fixtures';

/**
 * Issue 11: `norpain audit verify` checks one consistent snapshot, also while the server writes. Another
 * process appends through the real AuditLog in a loop while this one verifies over and over; every
 * verification must be OK.
 */
test('verify passes on a log another process is appending to', async () => {
  const { log, dataDir, file } = openTempLog();
  log.append(event({ requestId: 'first' }));
  log.close();
  const root = path.join(__dirname, '..', '..');
  const writer = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      // Like the server, the writer has the FHIR definitions loaded (at start-up) before it writes: an
      // entry's index keys name resource types by the reference parser, which knows types from them.
      `const { AuditLog } = require('./src/audit/log');
       const { buildAuditEvent } = require('./src/audit/auditEvent');
       require('./src/fhir/definitions').loadFhirDefinitions();
       const log = AuditLog.open(${JSON.stringify(file)});
       const principal = { role: 'registry-admin', clientId: 'writer', scopes: [] };
       process.stdout.write('ready\\n');
       for (let i = 0; ; i++) {
         log.append(buildAuditEvent({ principal, interaction: 'read', resources: ['Condition/c' + i], outcome: '0' }));
       }`,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      writer.stdout.once('data', () => resolve());
      writer.once('exit', (code) => reject(new Error(`the writer exited (${code})`)));
    });
    const lines: string[] = [];
    const counts: number[] = [];
    for (let i = 0; i < 12; i++) {
      const code = runAuditVerify(dataDir, (line) => lines.push(line));
      expect([code, lines[lines.length - 1]]).toEqual([
        0,
        expect.stringMatching(/^audit log OK: \d+ entries/),
      ]);
      counts.push(Number(/OK: (\d+)/.exec(lines[lines.length - 1])?.[1]));
    }
    // The writer really was writing while we verified.
    expect(counts[counts.length - 1]).toBeGreaterThan(counts[0]);
  } finally {
    writer.kill();
  }
}, 60_000);
