import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Principal } from '../../src/auth/principal';
import { buildAuditEvent, type AuditFacts } from '../../src/audit/auditEvent';
import { AuditLog, auditLogPath } from '../../src/audit/log';

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-audit-'));
}

export function openTempLog(): { log: AuditLog; dataDir: string; file: string } {
  const dataDir = tempDataDir();
  const file = auditLogPath(dataDir);
  return { log: AuditLog.open(file), dataDir, file };
}

export const clinic: Principal = {
  role: 'clinic',
  clientId: 'dips-stolav',
  organization: '4001031',
  hpr: '9144889',
  scopes: ['system/QuestionnaireResponse.c'],
};

export const admin: Principal = { role: 'registry-admin', clientId: 'norpain-staff', scopes: ['user/*.rs'] };

/** A portal principal: pid is a synthetic (month + 80) fødselsnummer from the law reference. */
export const portal: Principal = {
  role: 'portal',
  clientId: 'helsenorge',
  pid: '10915596784',
  scopes: ['patient/*.rs'],
};

export function event(facts: Partial<AuditFacts> = {}) {
  return buildAuditEvent({
    principal: clinic,
    interaction: 'read',
    resources: ['Condition/c1'],
    patients: ['1-personA'],
    outcome: '0',
    requestId: 'req-1',
    ...facts,
  });
}
