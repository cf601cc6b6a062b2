import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import type { SearchRequest } from '@medplum/core';

/**
 * The store contract. The embedded SQLite store and the HAPI FHIR JPA store both implement it, and the
 * contract suite in test/store-contract runs against each. Resources reaching a store are already
 * validated, checked against the exclusion rules and pseudonymised: a store never sees a direct identifier.
 *
 * Errors are FhirErrors (src/fhir/outcomes.ts): 404 unknown, 410 deleted, 412 version mismatch,
 * 409 conflicting concurrent write, 400 unsupported search parameter or modifier, 412 when a conditional
 * operation matches more than one resource, 503 when the backing service is unreachable.
 */
export interface FhirStore {
  /** Human-readable name for logs and the CapabilityStatement ("embedded", "hapi"). */
  readonly kind: string;

  /** Creates with a server-assigned id: `id` when given (the server chose it ahead, so that a lost answer
   * can be looked up: src/ingest/persist.ts), else a new one. With ifNoneExist (a search query string such
   * as "identifier=sys|val") returns the existing match instead, with created=false. */
  create<T extends Resource>(
    resource: T,
    options?: { ifNoneExist?: string; id?: string },
  ): Promise<WriteResult<T>>;

  read<T extends Resource>(type: ResourceType, id: string): Promise<T>;

  vread<T extends Resource>(type: ResourceType, id: string, versionId: string): Promise<T>;

  /** Update (or create with the client's id when it does not exist: update-as-create).
   * ifMatch is the expected current versionId (bare, without W/""). */
  update<T extends Resource>(
    resource: T & { id: string },
    options?: { ifMatch?: string },
  ): Promise<WriteResult<T>>;

  /** Conditional update: search by the query; 0 matches creates, 1 updates it, >1 is 412. */
  conditionalUpdate<T extends Resource>(resource: T, query: string): Promise<WriteResult<T>>;

  /** Logical delete (a new deleted version in history). Deleting what is absent or deleted succeeds. */
  delete(type: ResourceType, id: string): Promise<void>;

  search<T extends Resource>(request: SearchRequest<T>): Promise<SearchResult<T>>;

  /** Optional, for bulk export: every match of a search's filters as the stored JSON text in UTF-8 bytes
   * (what a staff export writes out as it is, and a reader of the resource parses), in a stable order,
   * with memory flat whatever the size. Stores without it are read with `search`, page by page. */
  scan?(request: SearchRequest): AsyncIterable<Buffer>;

  /** Optional: what one reference search parameter of every match of a search's filters points at, as
   * `Type/id` (literal references only; a match with none gives nothing, one with several gives each),
   * read from the store's reference index without reading the resources; memory flat as for `scan`.
   * Stores without it are read with `scan` or `search` (src/store/scan.ts). */
  scanReferences?(request: SearchRequest, param: string): AsyncIterable<string>;

  /** Optional: the store's clock, never behind the `lastUpdated` of anything it holds. A store that hands
   * out strictly increasing instants runs ahead of the wall clock during a burst of writes, so "everything
   * written so far" is up to this instant, not up to the wall clock's. Stores without it stamp with the
   * wall clock. */
  now?(): Date;

  /** Instance history (id given) or type history, newest first. Deleted versions have no resource. */
  history(type: ResourceType, id: string | undefined, options?: HistoryOptions): Promise<HistoryResult>;

  /** A FHIR transaction Bundle, all or nothing: urn:uuid references resolved, conditional create and
   * update honoured, entries processed in FHIR's order (DELETE, POST, PUT/PATCH, GET). Returns the
   * transaction-response Bundle (entry.response with status, location, etag, lastModified). */
  transaction(bundle: Bundle): Promise<Bundle>;

  /** Physically erases the Patient, every resource that any version of any resource ever referred to it
   * with (wherever the reference stands: extensions and contained resources too), and whatever refers to
   * one of those, with every version of each, so that no byte of them remains in the store's files. Then
   * checks independently of how it found them (the receipt's `residual`). */
  erasePatientCompartment(patientId: string, options?: ErasureOptions): Promise<ErasureReceipt>;

  /** Physically erases one resource with every version, and nothing else (what references it is the
   * caller's concern), e.g. the Patient of a person merged into another once its data were moved. */
  eraseResource(type: ResourceType, id: string): Promise<ErasureReceipt>;

  /** Readiness probe: resolves when the store can serve requests. */
  ping(): Promise<void>;

  close(): Promise<void>;
}

export interface WriteResult<T extends Resource> {
  resource: T;
  /** true when a new resource was created (201), false for an update or a matched conditional create. */
  created: boolean;
}

export interface SearchResult<T extends Resource = Resource> {
  /** The matches of this page, in order. */
  matches: T[];
  /** Resources pulled in by _include / _revinclude. */
  included: Resource[];
  /** Total matches, when the request asked for it (_total=accurate, or _summary=count) or it is cheap. */
  total?: number;
  /** Offset of the next page, when there is one. */
  nextOffset?: number;
}

export interface HistoryOptions {
  count?: number;
  offset?: number;
  /** Only versions updated at or after this instant (_since). */
  since?: string;
}

export interface HistoryEntry {
  resourceType: ResourceType;
  id: string;
  versionId: string;
  lastUpdated: string;
  /** The version's content; absent for a delete. */
  resource?: Resource;
  /** The interaction that produced this version. */
  method: 'POST' | 'PUT' | 'DELETE';
}

export interface HistoryResult {
  entries: HistoryEntry[];
  total: number;
  nextOffset?: number;
}

export interface ErasureOptions {
  /** More text that must not remain anywhere in the store afterwards (the person's pseudonym). */
  texts?: readonly string[];
}

/** What erasure reports. It holds no identifiers: counts only. */
export interface ErasureReceipt {
  /** Resources erased per resource type (each resource counted once, with all its versions). */
  erased: Record<string, number>;
  /** Versions erased in all. */
  versionsErased: number;
  /**
   * What the independent check still finds after the erasure, 0 when nothing is left: references to an
   * erased resource and versions of one still in the reference index, plus stored versions (any version
   * of any resource) whose text holds the Patient id or one of the `texts`; when those find nothing, 1 if
   * the store's files still hold one of them as bytes all the same (outside any row).
   */
  residual: number;
}
