import type { AuditEvent, ResourceType } from '@medplum/fhirtypes';
import { patientEntity, patientPseudonymsOf } from '../audit/auditEvent';
import type { AuditLog } from '../audit/log';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import type { FhirStore } from '../store/FhirStore';
import type { IntentRecord, WriteJournal } from './journal';
import { targetLanded } from './lookup';
import { commitLinks } from './pseudonymise';

export interface RecoveryDeps {
  journal: WriteJournal;
  store: FhirStore;
  vault: IdentityVault;
  audit: AuditLog;
  /** What a stored write sets off after persist (src/ingest/pipeline.ts, `afterPersist`), run again for
   * the resources a completed write stored or deleted: the step may not have run before the crash. */
  afterStored: (landed: LandedTarget[]) => Promise<void>;
}

/** A resource a recovered write stored (or deleted). */
export interface LandedTarget {
  type: ResourceType;
  id: string;
  method: 'POST' | 'PUT' | 'DELETE';
}

/**
 * Completes or undoes every write a crash (or a lost answer) left unfinished (docs/architecture.md,
 * "One outcome per write"). For each open intent the write is looked up by its targets:
 * - stored: the vault links are made (again: that changes nothing if they were), the data of persons they
 *   merge moved, the steps after persist run again (follow-up Tasks), and the write's audit entry
 *   recorded unless the request's own is in the log;
 * - not stored: Patients created ahead of it for persons the vault never linked are erased, and the
 *   attempt is audited as failed.
 * The intent is closed only after that, so an interrupted recovery simply runs again. Throws (leaving
 * the rest for the next run) when the store cannot be asked.
 */
export async function recoverWrites(deps: RecoveryDeps): Promise<{ completed: number; undone: number }> {
  let completed = 0;
  let undone = 0;
  for (const intent of await deps.journal.unfinished()) {
    const stored = await landed(deps.store, intent);
    if (stored.length > 0) {
      await complete(deps, intent, stored);
      completed++;
    } else {
      await undo(deps, intent);
      undone++;
    }
    await deps.journal.finish(intent.id);
  }
  return { completed, undone };
}

/** The write's targets found stored (a transaction is all or nothing: any found means all were). */
async function landed(store: FhirStore, intent: IntentRecord): Promise<LandedTarget[]> {
  const found: LandedTarget[] = [];
  for (const target of intent.targets ?? []) {
    const id = await targetLanded(store, target, intent.openedAt);
    if (id !== undefined) found.push({ type: target.type, id, method: target.method });
  }
  return found;
}

async function complete(deps: RecoveryDeps, intent: IntentRecord, stored: LandedTarget[]): Promise<void> {
  if (intent.sealedLinks !== undefined) {
    await commitLinks(deps.store, deps.vault, deps.vault.openLinks(intent.sealedLinks));
  }
  await deps.afterStored(stored);
  if (intent.audit && !deps.audit.hasEntry(intent.requestId, intent.openedAt, '0')) {
    deps.audit.append(withPersons(deps, intent.audit, intent.ensured));
  }
}

async function undo(deps: RecoveryDeps, intent: IntentRecord): Promise<void> {
  for (const patientId of intent.ensured) {
    if (deps.vault.findByPatientId(patientId) === undefined) {
      await deps.store.eraseResource('Patient', patientId);
    }
  }
  if (intent.audit && !deps.audit.hasEntry(intent.requestId, intent.openedAt, '8')) {
    deps.audit.append({
      ...intent.audit,
      recorded: new Date().toISOString(),
      outcome: '8',
      outcomeDesc: 'Interrupted before the write was stored; nothing was changed.',
    });
  }
}

/** The pending entry, with the persons of Patients linked only now (their pseudonyms are known now). */
function withPersons(deps: RecoveryDeps, event: AuditEvent, patientIds: readonly string[]): AuditEvent {
  const known = new Set(patientPseudonymsOf(event));
  const added = patientIds
    .map((patientId) => deps.vault.findByPatientId(patientId)?.pseudonym)
    .filter((pseudonym): pseudonym is string => pseudonym !== undefined && !known.has(pseudonym))
    .map(patientEntity);
  return {
    ...event,
    recorded: new Date().toISOString(),
    outcomeDesc: 'Recorded at start-up: the server stopped after the write was stored.',
    entity: [...(event.entity ?? []), ...added],
  };
}
