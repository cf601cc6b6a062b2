import type { VaultAuditSink, VaultReadRecord } from '../identity/vault/audit';
import { buildAuditEvent } from './auditEvent';
import type { AuditLog } from './log';

/**
 * Records each identity-vault read as an AuditEvent ("vault-read", with its purpose). The vault names
 * the pseudonymous Patient ids it read; `pseudonymOf` turns each into the person's registry pseudonym
 * (e.g. `id => vault.findByPatientId(id)?.pseudonym`), so the person finds the read in their own access
 * log. Synchronous and throwing, as the vault expects: a read that cannot be audited does not happen.
 */
export function vaultAuditSink(
  log: AuditLog,
  pseudonymOf: (patientId: string) => string | undefined,
): VaultAuditSink {
  return {
    record(read: VaultReadRecord): void {
      const patients = read.patientIds.map(pseudonymOf).filter((p): p is string => p !== undefined);
      log.append(
        buildAuditEvent({
          actor: read.actor,
          interaction: 'vault-read',
          purpose: read.purpose,
          resources: read.patientIds.length > 0 ? read.patientIds.map((id) => `Patient/${id}`) : ['Patient'],
          patients,
          personCount: read.patientIds.length === read.count ? undefined : read.count,
          outcome: '0',
          requestId: read.requestId,
          recorded: new Date(read.at),
        }),
      );
    },
  };
}
