import type { AuditEvent } from '@medplum/fhirtypes';
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
}

/**
 * Completes or undoes every write a crash (or a lost answer) left unfinished (docs/architecture.md,
 * "One outcome per write"). For each open intent the write is looked up by its targets:
 * - stored: the vault links are made (again: that changes nothing if they were), the data of persons they
 *   merge moved, and the write's audit entry recorded unless the request's own is in the log;
 * - not stored: Patients created ahead of it for persons the vault never linked are erased, and the
 *   attempt is audited as failed.
 * The intent is closed only after that, so an interrupted recovery simply runs again. Throws (leaving
 * the rest for the next run) when the store cannot be asked.
 */
export async function recoverWrites(deps: RecoveryDeps): Promise<{ completed: number; undone: number }> {
  let completed = 0;
  let undone = 0;
  for (const intent of deps.journal.unfinished()) {
    if (await landed(deps.store, intent)) {
      await complete(deps, intent);
      completed++;
    } else {
      await undo(deps, intent);
      undone++;
    }
    deps.journal.finish(intent.id);
  }
  return { completed, undone };
}

async function landed(store: FhirStore, intent: IntentRecord): Promise<boolean> {
  for (const target of intent.targets ?? []) {
    if ((await targetLanded(store, target, intent.openedAt)) !== undefined) {
      return true; // a transaction is all or nothing; a single write has one target
    }
  }
  return false;
}

async function complete(deps: RecoveryDeps, intent: IntentRecord): Promise<void> {
  if (intent.sealedLinks !== undefined) {
    await commitLinks(deps.store, deps.vault, deps.vault.openLinks(intent.sealedLinks));
  }
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
