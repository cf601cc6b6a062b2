import type { Bundle, BundleEntry, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { FhirStore } from '../store/FhirStore';
import type { Write, WriteEntry } from './write';

/** What persisting a write produced, for the HTTP layer to answer with. */
export type PersistOutcome = (
  | { kind: 'resource'; resource: Resource; created: boolean }
  | { kind: 'deleted' }
  | { kind: 'transaction'; bundle: Bundle }
) & {
  /** Per entry, in order: what the data dictionary did not keep (warnings; see src/ingest/notStored.ts). */
  notStored?: OperationOutcomeIssue[][];
};

/** Executes a validated, checked and pseudonymised write against the store: the last stage before audit. */
export async function persistWrite(store: FhirStore, write: Write): Promise<PersistOutcome> {
  const outcome = await execute(store, write);
  return write.entries.some((e) => e.notStored?.length)
    ? { ...outcome, notStored: write.entries.map((e) => e.notStored ?? []) }
    : outcome;
}

async function execute(store: FhirStore, write: Write): Promise<PersistOutcome> {
  if (write.transaction) {
    return { kind: 'transaction', bundle: await store.transaction(toTransactionBundle(write)) };
  }
  const entry = write.entries[0];
  switch (entry.method) {
    case 'POST': {
      const result = await store.create(requireResource(entry), { ifNoneExist: entry.ifNoneExist });
      return { kind: 'resource', resource: result.resource, created: result.created };
    }
    case 'PUT': {
      const resource = requireResource(entry);
      const result = entry.conditionalQuery
        ? await store.conditionalUpdate(resource, entry.conditionalQuery)
        : await store.update({ ...resource, id: requireId(entry) }, { ifMatch: entry.ifMatch });
      return { kind: 'resource', resource: result.resource, created: result.created };
    }
    case 'DELETE':
      await store.delete(entry.resourceType, requireId(entry));
      return { kind: 'deleted' };
  }
}

/** Rebuilds the transaction Bundle from the (possibly rewritten) write entries, in their order. */
export function toTransactionBundle(write: Write): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: write.entries.map((entry): BundleEntry => {
      const url =
        entry.method === 'POST'
          ? entry.resourceType
          : entry.conditionalQuery !== undefined
            ? `${entry.resourceType}?${entry.conditionalQuery}`
            : `${entry.resourceType}/${requireId(entry)}`;
      return {
        fullUrl: entry.fullUrl,
        resource: entry.resource,
        request: {
          method: entry.method,
          url,
          ifNoneExist: entry.ifNoneExist,
          ifMatch: entry.ifMatch !== undefined ? `W/"${entry.ifMatch}"` : undefined,
        },
      };
    }),
  };
}

function requireResource(entry: WriteEntry): Resource {
  if (!entry.resource) {
    throw new Error(`A ${entry.method} write entry has no resource`);
  }
  return entry.resource;
}

function requireId(entry: WriteEntry): string {
  if (!entry.id) {
    throw new Error(`A ${entry.method} write entry has no target id`);
  }
  return entry.id;
}
