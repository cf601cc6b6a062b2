import type { AuditEvent, Bundle, BundleEntry, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { errors } from '../fhir/outcomes';
import { newServerId } from '../identity/serverId';
import { isAmbiguousWrite, UnresolvedWriteError } from '../store/ambiguousWrite';
import type { FhirStore } from '../store/FhirStore';
import type { IntentTarget, WriteIntent } from './journal';
import { targetLanded } from './lookup';
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

export interface PersistJournal {
  intent?: WriteIntent;
  /** The write's audit entry, built (and checked) before the write: a write it cannot be built for fails. */
  audit?: (write: Write, targets: IntentTarget[]) => AuditEvent;
}

/**
 * Executes a validated, checked and pseudonymised write against the store: the last stage before audit.
 * Creates get their id here, so that every write has targets known before it is sent; they and the
 * write's audit entry go to the write journal first. When the store does not answer after the write was
 * sent, the write is looked up by those targets: found, it is answered from what the store holds; not
 * found, the client is told truthfully that nothing was changed.
 */
export async function persistWrite(
  store: FhirStore,
  write: Write,
  journal: PersistJournal = {},
): Promise<PersistOutcome> {
  const assigned = withAssignedIds(write);
  const targets = targetsOf(assigned);
  const audit = journal.audit?.(assigned, targets);
  const since = new Date().toISOString();
  await journal.intent?.planWrite(targets, audit);
  let outcome: PersistOutcome;
  try {
    outcome = await send(store, assigned);
  } catch (err) {
    if (!isAmbiguousWrite(err)) {
      throw err;
    }
    outcome = await resolveAmbiguous(store, assigned, targets, journal.intent?.record.openedAt ?? since);
  }
  if (journal.intent) journal.intent.stored = true;
  return write.entries.some((e) => e.notStored?.length)
    ? { ...outcome, notStored: write.entries.map((e) => e.notStored ?? []) }
    : outcome;
}

async function send(store: FhirStore, write: Write): Promise<PersistOutcome> {
  if (write.transaction) {
    return { kind: 'transaction', bundle: await store.transaction(toTransactionBundle(write)) };
  }
  const entry = write.entries[0];
  switch (entry.method) {
    case 'POST': {
      const result = await store.create(requireResource(entry), {
        ifNoneExist: entry.ifNoneExist,
        id: entry.id,
      });
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

/**
 * A create (POST without If-None-Exist) gets its id here, so that the store holds it under an id known
 * before the write: a lost answer can be looked up, and a resend changes nothing. In a transaction the
 * entry becomes an update-as-create (PUT Type/id), the one way to choose an id there (HAPI ignores ids
 * on POST entries); references to the entry's fullUrl still resolve.
 */
function withAssignedIds(write: Write): Write {
  return {
    ...write,
    entries: write.entries.map((entry) => {
      if (entry.method !== 'POST' || entry.ifNoneExist !== undefined || !entry.resource) {
        return entry;
      }
      const id = newServerId();
      return {
        ...entry,
        method: write.transaction ? 'PUT' : 'POST',
        id,
        resource: { ...entry.resource, id },
        fresh: true,
      };
    }),
  };
}

function targetsOf(write: Write): IntentTarget[] {
  return write.entries.map((entry) => ({
    type: entry.resourceType,
    method: entry.method,
    id: entry.id,
    query: entry.id === undefined ? (entry.ifNoneExist ?? entry.conditionalQuery) : undefined,
    fresh: entry.fresh,
  }));
}

/** After an ambiguous failure: the write is found (and answered from the store) or truthfully not. */
async function resolveAmbiguous(
  store: FhirStore,
  write: Write,
  targets: IntentTarget[],
  since: string,
): Promise<PersistOutcome> {
  let found: (string | undefined)[];
  try {
    found = await Promise.all(targets.map((target) => targetLanded(store, target, since)));
  } catch {
    throw new UnresolvedWriteError(5);
  }
  // A transaction is all or nothing, so one entry found means all were stored.
  if (!found.some((id) => id !== undefined)) {
    throw errors.serviceUnavailable(
      'The FHIR store did not answer; the server looked the write up and it was not stored. Nothing was changed by this request; try again shortly.',
      5,
    );
  }
  try {
    const entries = await Promise.all(
      targets.map(async (target, index): Promise<BundleEntry> => {
        const id = found[index] ?? target.id;
        if (target.method === 'DELETE' || id === undefined) {
          return { response: { status: '204 No Content' } };
        }
        const resource = await store.read(target.type, id);
        return {
          resource,
          response: {
            status: target.fresh ? '201 Created' : '200 OK',
            location: `${target.type}/${id}/_history/${resource.meta?.versionId}`,
            etag: `W/"${resource.meta?.versionId}"`,
            lastModified: resource.meta?.lastUpdated,
          },
        };
      }),
    );
    if (write.transaction) {
      return {
        kind: 'transaction',
        bundle: { resourceType: 'Bundle', type: 'transaction-response', entry: entries },
      };
    }
    const [entry] = entries;
    return entry.resource
      ? { kind: 'resource', resource: entry.resource, created: targets[0].fresh === true }
      : { kind: 'deleted' };
  } catch {
    throw new UnresolvedWriteError(5);
  }
}

/** Rebuilds the transaction Bundle from the (possibly rewritten) write entries, in their order. */
function toTransactionBundle(write: Write): Bundle {
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
