import { loadConfig } from '../../src/config';
import { ReservationRegister } from '../../src/consent';
import { loadReservationKey } from '../../src/consent/keys';
import { IdentityVault, loadIdentityKeys, MemoryVaultAuditSink, Pseudonymiser } from '../../src/identity';
import { makeDataDirPrivate } from '../../src/store/dataDir';
import { EmbeddedStore } from '../../src/store/embedded';
import { loadUnits, readUnits } from '../../src/units/units';
import { loadNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { generateCohort, type CohortOptions, type CohortPerson } from './cohort';

export interface LoadSummary {
  persons: number;
  reserved: number;
  /** National ids linked in the vault (persons with a changed number or a D-number have two). */
  nationalIds: number;
  /** Stored resources by type. */
  resources: Record<string, number>;
  seconds: number;
}

/** Persons per store transaction: large enough to amortise the commit, small enough to keep memory flat. */
const BATCH = 500;

/**
 * Writes a synthetic cohort in bulk (not through HTTP) into a DATA_DIR that the server then opens as it
 * is: the embedded store (with the units and Questionnaires the server would load), the identity vault
 * holding each person's national ids under the generated Patient id, the reservation register with the
 * reserved persons, and the development keys (created here when absent, or those already in DATA_DIR).
 * `onBatch` is told how many persons are done, for progress output.
 */
export async function loadCohort(
  dataDir: string,
  options: Omit<CohortOptions, 'pseudonymiser'>,
  onBatch?: (done: number) => void,
): Promise<LoadSummary> {
  const started = performance.now();
  const env = { NODE_ENV: 'development', DATA_DIR: dataDir };
  const config = loadConfig(env);
  makeDataDirPrivate(config.dataDir);
  const keys = loadIdentityKeys({ env: {}, production: false, dataDir: config.dataDir });
  const pseudonymiser = new Pseudonymiser(keys.pseudonym);
  const vault = IdentityVault.open({
    file: IdentityVault.defaultFile(config.dataDir),
    vaultKey: keys.vault,
    pseudonymiser,
    // Linking reveals no national id, so nothing is read that must be audited.
    audit: new MemoryVaultAuditSink(),
  });
  const register = ReservationRegister.open({
    file: ReservationRegister.defaultFile(config.dataDir),
    key: loadReservationKey({ env: {}, production: false, dataDir: config.dataDir }),
  });
  if (config.store.kind !== 'embedded') {
    throw new Error('the cohort loader writes the embedded store only');
  }
  // The store file itself, not the server's view of it (src/server.ts, openStore): a fresh DATA_DIR has no
  // Patient facts (src/store/patientFacts.ts), and the server asks the store about Patients it has none of.
  const store = EmbeddedStore.open(EmbeddedStore.defaultFile(config.dataDir));
  const summary: LoadSummary = { persons: 0, reserved: 0, nationalIds: 0, resources: {}, seconds: 0 };
  try {
    if (vault.count() > 0) {
      // Ids and pseudonyms are derived from the seed: a second cohort would collide with the first.
      throw new Error('the DATA_DIR already holds persons; load a cohort into a fresh DATA_DIR');
    }
    await loadUnits(store, readUnits(config.unitsFile));
    await loadNorPainQuestionnaires(store);
    let batch: CohortPerson[] = [];
    const flush = (): void => {
      store.immediate(() => {
        for (const person of batch) {
          for (const resource of person.resources) {
            store.createSync(resource, undefined, resource.id);
            summary.resources[resource.resourceType] = (summary.resources[resource.resourceType] ?? 0) + 1;
          }
        }
      });
      const kept = batch.filter((p) => !p.reserved);
      const reserved = batch.filter((p) => p.reserved);
      const linked = vault.commit(kept.map((p) => ({ ids: p.ids, createdPatientId: p.patientId })));
      for (const [i, result] of linked.entries()) {
        // The Patients were written with the generator's pseudonym: the vault must agree on it.
        if (result.person.pseudonym !== kept[i].pseudonym) {
          throw new Error('the vault made another pseudonym than the generator');
        }
      }
      for (const person of reserved) {
        register.reserve({
          hashes: person.ids.map((id) => register.hashNationalId(id)),
          scope: 'patient-privacy',
          channel: 'letter',
          reservedAt: person.reservedAt as string,
        });
      }
      summary.persons += batch.length;
      summary.reserved += reserved.length;
      summary.nationalIds += kept.reduce((n, p) => n + p.ids.length, 0);
      onBatch?.(summary.persons);
      batch = [];
    };
    for (const person of generateCohort({ ...options, pseudonymiser })) {
      batch.push(person);
      if (batch.length === BATCH) {
        flush();
      }
    }
    if (batch.length > 0) {
      flush();
    }
  } finally {
    await store.close();
    register.close();
    vault.close();
    makeDataDirPrivate(config.dataDir);
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
