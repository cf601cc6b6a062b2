/**
 * Every read of national ids from the vault is recorded (DESIGN §3.4, §4). The audit issue supplies the
 * real sink (an AuditEvent writer); the vault depends only on this interface. A record names the
 * pseudonymous Patient ids concerned, never a national id.
 */
export type VaultPurpose = 'follow-up' | 'access-request' | 'coverage-linkage' | 'erasure' | 'rekey';

export interface VaultReadContext {
  /** Who asked: the client id of the calling principal, or "norpain-cli" for operator commands. */
  actor: string;
  /** Correlates with the request's log line and audit event. */
  requestId?: string;
}

export interface VaultReadRecord extends VaultReadContext {
  purpose: VaultPurpose;
  /** Logical ids of the pseudonymous Patients whose ids were read (empty for bulk reads; see count). */
  patientIds: string[];
  /** How many persons' ids were read. */
  count: number;
  /** ISO instant. */
  at: string;
}

export interface VaultAuditSink {
  record(event: VaultReadRecord): void;
}

/** Keeps records in memory: for tests and for the CLI, which prints a summary. */
export class MemoryVaultAuditSink implements VaultAuditSink {
  readonly records: VaultReadRecord[] = [];
  record(event: VaultReadRecord): void {
    this.records.push(event);
  }
}
