import { formatSearchQuery, type SearchRequest } from '@medplum/core';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../../fhir/definitions';
import { errors } from '../../fhir/outcomes';
import { literalOf } from '../../fhir/reference';
import type {
  ErasureOptions,
  ErasureReceipt,
  FhirStore,
  HistoryEntry,
  HistoryOptions,
  HistoryResult,
  SearchResult,
  WriteResult,
} from '../FhirStore';
import { cleanEntries, nextOffset, relativeTo, withoutRequestSource } from './bundles';
import { HapiClient, hapiError, type HapiClientOptions, type HapiResponse } from './client';
import { HapiDatabase } from './database';
import { eraseCompartment, eraseResource } from './erasure';
import { checkBundleDefinitions, checkSharedDefinitions, type SharedDefinitions } from './sharedDefinitions';
import { translateForHapi } from './searchTranslation';
import { newServerId } from '../../identity/serverId';

const DEFAULT_PAGE = 20;
const MAX_PAGE = 1000;
const REPRESENTATION = { Prefer: 'return=representation' };

/**
 * The FhirStore contract over HAPI FHIR JPA's REST API (production: HAPI on PostgreSQL, docker/). HAPI does
 * the FHIR work; this class maps the contract onto it, keeps retries from duplicating writes (a create is
 * a PUT to an id chosen here, so sending it twice is harmless), and turns HAPI's answers into the
 * FhirErrors the contract names. Only the registry's fixed tags, labels and profiles reach HAPI
 * (`definitions`, see sharedDefinitions.ts). With HAPI's database (`databaseUrl`) an erasure is also
 * checked in the database and followed by a vacuum (database.ts).
 */
export class HapiStore implements FhirStore {
  readonly kind = 'hapi';
  private readonly client: HapiClient;
  private readonly database: HapiDatabase | undefined;

  constructor(
    baseUrl: string,
    private readonly definitions: SharedDefinitions,
    options: HapiClientOptions & { databaseUrl?: string } = {},
  ) {
    loadFhirDefinitions(); // the reference parser that erasure uses knows resource types from them
    this.client = new HapiClient(baseUrl, options);
    this.database = options.databaseUrl === undefined ? undefined : new HapiDatabase(options.databaseUrl);
  }

  /**
   * The store for HAPI at baseUrl (e.g. http://hapi:8080/fhir). It does not wait for HAPI: until HAPI
   * answers, requests get 503 with Retry-After and /readyz (ping) says not ready.
   */
  static connect(
    baseUrl: string,
    definitions: SharedDefinitions,
    options: HapiClientOptions & { databaseUrl?: string } = {},
  ): HapiStore {
    return new HapiStore(baseUrl, definitions, options);
  }

  async create<T extends Resource>(
    resource: T,
    options: { ifNoneExist?: string; id?: string } = {},
  ): Promise<WriteResult<T>> {
    checkSharedDefinitions(resource, this.definitions, resource.resourceType);
    if (options.ifNoneExist !== undefined) {
      const response = await this.client.send({
        method: 'POST',
        path: resource.resourceType,
        body: withoutId(resource),
        headers: { ...REPRESENTATION, 'If-None-Exist': options.ifNoneExist },
        idempotent: true,
      });
      const written = this.expect<T>(response, [200, 201], `Could not create ${resource.resourceType}`);
      return { resource: written, created: response.status === 201 };
    }
    // The id is chosen here so that a retry after a lost answer updates the same resource (HAPI skips
    // an update that changes nothing) instead of creating a second one.
    const id = options.id ?? newServerId();
    const response = await this.client.send({
      method: 'PUT',
      path: `${resource.resourceType}/${id}`,
      body: { ...resource, id, meta: withoutVersion(resource.meta) },
      headers: REPRESENTATION,
      idempotent: true,
    });
    const written = this.expect<T>(response, [200, 201], `Could not create ${resource.resourceType}`);
    return { resource: written, created: true };
  }

  async read<T extends Resource>(type: ResourceType, id: string): Promise<T> {
    const response = await this.client.send({ method: 'GET', path: `${type}/${enc(id)}`, idempotent: true });
    return this.expect<T>(response, [200], describe(type, id, response.status));
  }

  async vread<T extends Resource>(type: ResourceType, id: string, versionId: string): Promise<T> {
    const response = await this.client.send({
      method: 'GET',
      path: `${type}/${enc(id)}/_history/${enc(versionId)}`,
      idempotent: true,
    });
    return this.expect<T>(response, [200], describe(type, `${id} version ${versionId}`, response.status));
  }

  async update<T extends Resource>(
    resource: T & { id: string },
    options: { ifMatch?: string } = {},
  ): Promise<WriteResult<T>> {
    checkSharedDefinitions(resource, this.definitions, resource.resourceType);
    const headers: Record<string, string> = { ...REPRESENTATION };
    if (options.ifMatch !== undefined) {
      headers['If-Match'] = `W/"${options.ifMatch}"`;
    }
    const response = await this.client.send({
      method: 'PUT',
      path: `${resource.resourceType}/${enc(resource.id)}`,
      body: { ...resource, meta: withoutVersion(resource.meta) },
      headers,
      // With If-Match a resent update would fail its own precondition; without, it is harmless.
      idempotent: options.ifMatch === undefined,
    });
    if (response.status === 409 && options.ifMatch !== undefined) {
      // HAPI answers a failed If-Match with 409; FHIR (and the contract) say 412.
      throw errors.preconditionFailed(
        `${resource.resourceType}/${resource.id} is not at version ${options.ifMatch}; read it again and retry.`,
      );
    }
    const written = this.expect<T>(response, [200, 201], `Could not update ${resource.resourceType}`);
    return { resource: written, created: response.status === 201 };
  }

  async conditionalUpdate<T extends Resource>(resource: T, query: string): Promise<WriteResult<T>> {
    checkSharedDefinitions(resource, this.definitions, resource.resourceType);
    const response = await this.client.send({
      method: 'PUT',
      path: `${resource.resourceType}?${encodeQuery(query)}`,
      body: withoutId(resource),
      headers: REPRESENTATION,
      idempotent: true,
    });
    const written = this.expect<T>(response, [200, 201], `Could not update ${resource.resourceType}`);
    return { resource: written, created: response.status === 201 };
  }

  async delete(type: ResourceType, id: string): Promise<void> {
    const response = await this.client.send({
      method: 'DELETE',
      path: `${type}/${enc(id)}`,
      idempotent: true,
    });
    // Deleting what is absent or already deleted succeeds (contract).
    if (![200, 202, 204, 404, 410].includes(response.status)) {
      throw hapiError(response.status, response.body, `Could not delete ${type}/${id}`);
    }
  }

  async search<T extends Resource>(request: SearchRequest<T>): Promise<SearchResult<T>> {
    const count = request.count ?? DEFAULT_PAGE;
    const offset = request.offset ?? 0;
    if (!Number.isInteger(count) || count < 0 || !Number.isInteger(offset) || offset < 0) {
      throw errors.badRequest('_count and _offset must be whole numbers of 0 or more', ['_count', '_offset']);
    }
    // Always offset paging: HAPI then answers synchronously and its next link carries _offset. The order
    // ends in _id so that it is total: without it PostgreSQL may order equal rows differently for each
    // page, and a listing repeats some resources and never shows others.
    const hapiRequest = translateForHapi(request);
    const query = formatSearchQuery({
      ...hapiRequest,
      sortRules: [...(hapiRequest.sortRules ?? []), { code: '_id' }],
      count: Math.min(count, MAX_PAGE),
      offset,
    });
    const response = await this.client.send({
      method: 'GET',
      path: `${request.resourceType}${query}`,
      idempotent: true,
    });
    const bundle = this.expect<Bundle>(response, [200], `Could not search ${request.resourceType}`);
    const matches: T[] = [];
    const included: Resource[] = [];
    for (const entry of bundle.entry ?? []) {
      if (!entry.resource || entry.resource.resourceType === 'OperationOutcome') {
        continue;
      }
      const resource = withoutRequestSource(entry.resource);
      if (entry.search?.mode === 'include') {
        included.push(resource);
      } else {
        matches.push(resource as T);
      }
    }
    const result: SearchResult<T> = { matches, included };
    if (bundle.total !== undefined) {
      result.total = bundle.total;
    }
    const next = nextOffset(bundle, offset + matches.length);
    if (next !== undefined && matches.length > 0) {
      result.nextOffset = next;
    }
    return result;
  }

  async history(
    type: ResourceType,
    id: string | undefined,
    options: HistoryOptions = {},
  ): Promise<HistoryResult> {
    const params = new URLSearchParams();
    params.set('_count', String(Math.min(options.count ?? DEFAULT_PAGE, MAX_PAGE)));
    params.set('_offset', String(options.offset ?? 0));
    if (options.since !== undefined) {
      params.set('_since', options.since);
    }
    const path = id === undefined ? `${type}/_history` : `${type}/${enc(id)}/_history`;
    const response = await this.client.send({ method: 'GET', path: `${path}?${params}`, idempotent: true });
    const bundle = this.expect<Bundle>(response, [200], describe(type, id ?? '', response.status));
    const entries = cleanEntries(this.client.base, bundle.entry).map((entry) =>
      toHistoryEntry(this.client.base, entry),
    );
    for (const entry of entries) {
      if (entry.method === 'DELETE' && entry.lastUpdated === '') {
        entry.lastUpdated = await this.deletedAt(entry);
      }
    }
    const result: HistoryResult = { entries, total: bundle.total ?? entries.length };
    const next = nextOffset(bundle, (options.offset ?? 0) + entries.length);
    if (next !== undefined && entries.length > 0) {
      result.nextOffset = next;
    }
    return result;
  }

  async transaction(bundle: Bundle): Promise<Bundle> {
    if (bundle.type !== 'transaction') {
      throw errors.badRequest('Only Bundles of type "transaction" are processed here', 'Bundle.type');
    }
    checkBundleDefinitions(bundle, this.definitions);
    const response = await this.client.send({
      method: 'POST',
      path: '',
      body: bundle,
      headers: REPRESENTATION,
      // A transaction that may have committed cannot be resent blindly; a refused connection is retried.
      idempotent: false,
      timeoutMs: 120_000,
    });
    const usesIfMatch = (bundle.entry ?? []).some((e) => e.request?.ifMatch !== undefined);
    if (response.status === 409 && usesIfMatch) {
      throw errors.preconditionFailed(
        'A resource in the transaction is not at the version its ifMatch names; nothing was written.',
      );
    }
    const result = this.expect<Bundle>(
      response,
      [200],
      'The transaction was not processed; nothing was written.',
    );
    return { ...result, entry: cleanEntries(this.client.base, result.entry) };
  }

  erasePatientCompartment(patientId: string, options?: ErasureOptions): Promise<ErasureReceipt> {
    return eraseCompartment(this.client, this.database, patientId, options);
  }

  eraseResource(type: ResourceType, id: string): Promise<ErasureReceipt> {
    return eraseResource(this.client, `${type}/${encodeURIComponent(id)}`);
  }

  async ping(): Promise<void> {
    // A search that touches the database (the CapabilityStatement is served from memory).
    const response = await this.client.send({
      method: 'GET',
      path: 'Patient?_id=norpain-readiness-probe&_count=1',
      idempotent: false,
      timeoutMs: 5_000,
    });
    this.expect<Bundle>(response, [200], 'The FHIR store is not ready');
  }

  async close(): Promise<void> {
    // Nothing to release (fetch keeps no state between requests); a closed store refuses further work,
    // as the embedded store does, so a use after close is a server fault (500), not a silent success.
    this.client.close();
    await this.database?.close();
  }

  /**
   * HAPI's history leaves the time out of a delete entry; a vread of that version answers 410 with it
   * ("Resource was deleted at …"). Empty when HAPI does not say.
   */
  private async deletedAt(entry: HistoryEntry): Promise<string> {
    const response = await this.client.send({
      method: 'GET',
      path: `${entry.resourceType}/${enc(entry.id)}/_history/${enc(entry.versionId)}`,
      idempotent: true,
    });
    const text = JSON.stringify(response.body ?? '');
    return /deleted at (\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2}))/.exec(text)?.[1] ?? '';
  }

  private expect<T>(response: HapiResponse, ok: number[], fallback: string): T {
    if (!ok.includes(response.status)) {
      throw hapiError(response.status, response.body, fallback);
    }
    const body = response.body as Resource | undefined;
    if (body === undefined || typeof body !== 'object' || typeof body.resourceType !== 'string') {
      throw hapiError(502, undefined, 'The FHIR store gave an answer without a resource');
    }
    return withoutRequestSource(body) as T;
  }
}

/** A FHIR query string as the caller wrote it ("identifier=sys|val"), percent-encoded for the URL. */
function encodeQuery(query: string): string {
  return query
    .replace(/^\?/, '')
    .split('&')
    .filter((pair) => pair.length > 0)
    .map((pair) => {
      const at = pair.indexOf('=');
      const [key, value] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
      return `${encodeURIComponent(safeDecode(key))}=${encodeURIComponent(safeDecode(value))}`;
    })
    .join('&');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

function withoutId<T extends Resource>(resource: T): T {
  const { id: _id, ...rest } = resource;
  void _id;
  return { ...rest, meta: withoutVersion(resource.meta) } as T;
}

/** versionId and lastUpdated are the store's to set; a stale one from the client must not confuse HAPI. */
function withoutVersion(meta: Resource['meta']): Resource['meta'] {
  if (meta === undefined) {
    return undefined;
  }
  const { versionId: _v, lastUpdated: _l, ...rest } = meta;
  void _v;
  void _l;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

function describe(type: string, id: string, status: number): string {
  if (status === 404) {
    return `${type}/${id} was not found`;
  }
  if (status === 410) {
    return `${type}/${id} has been deleted`;
  }
  return `Could not read ${type}/${id}`;
}

function toHistoryEntry(base: string, entry: NonNullable<Bundle['entry']>[number]): HistoryEntry {
  // A delete has no resource: only its URL (HAPI's absolute `…/Type/id/_history/vid`) names what was deleted.
  const url = entry.request?.url ?? entry.response?.location ?? entry.fullUrl;
  const named = literalOf(relativeTo(base, url) ?? '');
  const resource = entry.resource;
  const method = entry.request?.method;
  const etagVersion = /W\/"([^"]+)"/.exec(entry.response?.etag ?? '')?.[1];
  return {
    resourceType: (resource?.resourceType ?? named?.resourceType) as ResourceType,
    id: resource?.id ?? named?.id ?? '',
    versionId: resource?.meta?.versionId ?? named?.version ?? etagVersion ?? '',
    lastUpdated: resource?.meta?.lastUpdated ?? entry.response?.lastModified ?? '',
    ...(resource ? { resource } : {}),
    method: method === 'DELETE' ? 'DELETE' : method === 'POST' ? 'POST' : 'PUT',
  };
}
