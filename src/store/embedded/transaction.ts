import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from '@medplum/fhirtypes';
import { errors } from '../../fhir/outcomes';
import { parseEntryUrl } from '../../fhir/reference';
import type { EmbeddedStore } from './EmbeddedStore';
import { newServerId } from '../../identity/serverId';

/**
 * A FHIR transaction on the embedded store. The caller runs it inside one BEGIN IMMEDIATE transaction,
 * so any FhirError thrown here rolls back every entry.
 *
 * Order (FHIR R4 §3.1.0.11.2): DELETE, then POST, then PUT, then GET. Before anything is written, every
 * `urn:uuid:` fullUrl of a POST or PUT is given its final id (a new UUID, the match of ifNoneExist or of
 * the conditional update), and all references in all resources are rewritten to those ids.
 */
export function runTransaction(store: EmbeddedStore, bundle: Bundle): Bundle {
  if (bundle.resourceType !== 'Bundle' || bundle.type !== 'transaction') {
    throw errors.badRequest('Expected a Bundle of type transaction.', 'Bundle.type');
  }
  const entries = bundle.entry ?? [];
  const responses: BundleEntry[] = new Array(entries.length);
  const planned = entries.map((entry, index) => plan(entry, index));
  checkDuplicates(planned);
  const byMethod = (m: string): Planned[] => planned.filter((p) => p.method === m);

  for (const p of byMethod('DELETE')) {
    const [type, id] = p.target;
    if (id) {
      store.deleteSync(type, id);
    } else {
      const matches = store.matchAll(type, p.query as string);
      if (matches.length > 1) {
        throw errors.preconditionFailed(
          `Entry ${p.index}: the conditional delete matches more than one resource.`,
        );
      }
      matches.forEach((m) => store.deleteSync(type, m.id as string));
    }
    responses[p.index] = { response: { status: '204 No Content' } };
  }

  // Resolve every fullUrl to its final Type/id before writing anything, so references can be rewritten.
  const resolved = new Map<string, string>();
  for (const p of [...byMethod('POST'), ...byMethod('PUT')]) {
    const resource = p.entry.resource as Resource;
    if (p.method === 'POST') {
      const existing = p.entry.request?.ifNoneExist
        ? matchOne(store, resource.resourceType, p.entry.request.ifNoneExist, p.index)
        : undefined;
      p.existing = existing;
      p.id = existing?.id ?? newServerId();
    } else if (p.query !== undefined) {
      const matches = store.matchAll(resource.resourceType, p.query);
      if (matches.length > 1) {
        throw errors.preconditionFailed(
          `Entry ${p.index}: the conditional update matches more than one resource.`,
        );
      }
      p.id = matches[0]?.id ?? resource.id ?? newServerId();
    } else {
      p.id = p.target[1];
    }
    if (p.entry.fullUrl) {
      resolved.set(p.entry.fullUrl, `${resource.resourceType}/${p.id}`);
    }
  }
  for (const p of planned) {
    if (p.entry.resource) {
      const resource = rewriteReferences(structuredClone(p.entry.resource), resolved);
      if (JSON.stringify(resource).includes('"reference":"urn:uuid:')) {
        throw errors.badRequest(
          `Entry ${p.index} refers to an urn:uuid that no entry of the transaction has as its fullUrl.`,
          `Bundle.entry[${p.index}].resource`,
        );
      }
      p.entry = { ...p.entry, resource };
    }
  }

  for (const p of byMethod('POST')) {
    const resource = p.entry.resource as Resource;
    if (p.existing) {
      responses[p.index] = respond(p.existing, '200 OK');
    } else {
      const { resource: stored } = store.createSync(resource, undefined, p.id);
      responses[p.index] = respond(stored, '201 Created');
    }
  }
  for (const p of byMethod('PUT')) {
    const resource = { ...(p.entry.resource as Resource), id: p.id as string };
    const ifMatch = p.entry.request?.ifMatch?.replace(/^W\//, '').replace(/"/g, '');
    const { resource: stored, created } = store.updateSync(resource, ifMatch);
    responses[p.index] = respond(stored, created ? '201 Created' : '200 OK');
  }
  for (const p of byMethod('GET')) {
    const [type, id] = p.target;
    if (id) {
      responses[p.index] = respond(store.readSync(type, id), '200 OK');
    } else {
      const result = store.searchSync(store.parseQuery(type, p.query ?? ''));
      const searchset: Bundle = {
        resourceType: 'Bundle',
        type: 'searchset',
        ...(result.total !== undefined ? { total: result.total } : {}),
        entry: [
          ...result.matches.map((r) => ({ resource: r, search: { mode: 'match' as const } })),
          ...result.included.map((r) => ({ resource: r, search: { mode: 'include' as const } })),
        ],
      };
      responses[p.index] = { resource: searchset, response: { status: '200 OK' } };
    }
  }
  return { resourceType: 'Bundle', type: 'transaction-response', entry: responses };
}

interface Planned {
  index: number;
  entry: BundleEntry;
  method: 'DELETE' | 'POST' | 'PUT' | 'GET';
  /** [type, id] from request.url; id is undefined for a type-level (conditional or search) URL. */
  target: [string, string | undefined];
  query?: string;
  id?: string;
  existing?: Resource;
}

function plan(entry: BundleEntry, index: number): Planned {
  const request = entry.request;
  if (!request?.method || !request.url) {
    throw errors.badRequest(
      `Entry ${index} needs request.method and request.url.`,
      `Bundle.entry[${index}].request`,
    );
  }
  const method = request.method;
  if (method !== 'DELETE' && method !== 'POST' && method !== 'PUT' && method !== 'GET') {
    throw errors.badRequest(
      `Entry ${index}: ${method} is not supported in a transaction.`,
      `Bundle.entry[${index}].request.method`,
    );
  }
  const target = parseEntryUrl(request.url);
  if (target === undefined) {
    throw errors.badRequest(
      `Entry ${index}: request.url must be Type, Type/id or Type?query.`,
      `Bundle.entry[${index}].request.url`,
    );
  }
  const { resourceType: type, id, query } = target;
  if ((method === 'POST' || method === 'PUT') && entry.resource?.resourceType !== type) {
    throw errors.badRequest(
      `Entry ${index}: the resource type does not match request.url.`,
      `Bundle.entry[${index}].resource`,
    );
  }
  if (method === 'PUT') {
    if (id && entry.resource?.id && entry.resource.id !== id) {
      throw errors.badRequest(
        `Entry ${index}: resource.id differs from the id in request.url.`,
        `Bundle.entry[${index}].resource.id`,
      );
    }
    if (!id && query === undefined) {
      throw errors.badRequest(
        `Entry ${index}: PUT needs Type/id or Type?query.`,
        `Bundle.entry[${index}].request.url`,
      );
    }
  }
  if (method === 'DELETE' && !id && query === undefined) {
    throw errors.badRequest(
      `Entry ${index}: DELETE needs Type/id or Type?query.`,
      `Bundle.entry[${index}].request.url`,
    );
  }
  return { index, entry, method, target: [type, id], query };
}

/** FHIR forbids two entries acting on the same resource in one transaction. */
function checkDuplicates(planned: Planned[]): void {
  const seen = new Set<string>();
  for (const p of planned) {
    if ((p.method === 'PUT' || p.method === 'DELETE') && p.target[1]) {
      const key = p.target.join('/');
      if (seen.has(key)) {
        throw errors.badRequest(`Entry ${p.index} acts on a resource another entry already changes.`);
      }
      seen.add(key);
    }
  }
}

function matchOne(store: EmbeddedStore, type: string, query: string, index: number): Resource | undefined {
  const matches = store.matchAll(type, query);
  if (matches.length > 1) {
    throw errors.preconditionFailed(`Entry ${index}: ifNoneExist matches more than one resource.`);
  }
  return matches[0];
}

/** Replaces every Reference.reference (at any depth) that names a fullUrl of this bundle. */
function rewriteReferences<T>(value: T, resolved: Map<string, string>): T {
  if (Array.isArray(value)) {
    value.forEach((v, i) => (value[i] = rewriteReferences(v, resolved)));
  } else if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const [key, v] of Object.entries(obj)) {
      if (key === 'reference' && typeof v === 'string' && resolved.has(v)) {
        obj[key] = resolved.get(v);
      } else if (typeof v === 'object') {
        obj[key] = rewriteReferences(v, resolved);
      }
    }
  }
  return value;
}

function respond(resource: Resource, status: string): BundleEntry {
  const version = resource.meta?.versionId as string;
  const response: BundleEntryResponse = {
    status,
    location: `${resource.resourceType}/${resource.id}/_history/${version}`,
    etag: `W/"${version}"`,
    lastModified: resource.meta?.lastUpdated,
  };
  return { fullUrl: `${resource.resourceType}/${resource.id}`, resource, response };
}
