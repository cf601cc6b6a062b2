import type { FhirStore } from './FhirStore';

/** The members of a FhirStore that a read-only store (a principal's view of one) has. */
export type StoreReads = Omit<
  FhirStore,
  | 'create'
  | 'update'
  | 'conditionalUpdate'
  | 'delete'
  | 'transaction'
  | 'erasePatientCompartment'
  | 'eraseResource'
>;

/**
 * A store that reads through `reads` and refuses every write: views read, and writes go through the
 * ingest pipeline, never through a view (calling one here is a programming error, not a client's).
 */
export function readOnlyStore(reads: StoreReads): FhirStore {
  const refuse = (): never => {
    throw new Error('A view of the store is read-only; writes go through the ingest pipeline');
  };
  return {
    ...reads,
    create: refuse,
    update: refuse,
    conditionalUpdate: refuse,
    delete: refuse,
    transaction: refuse,
    erasePatientCompartment: refuse,
    eraseResource: refuse,
  };
}
