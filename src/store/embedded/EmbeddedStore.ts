import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { parseSearchRequest, type SearchRequest } from '@medplum/core';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../../fhir/definitions';
import { errors, FhirError } from '../../fhir/outcomes';
import { isFhirId } from '../../fhir/reference';
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
import { storedReferences } from '../storedReferences';
import { extractIndexRows } from './extract';
import { fileHoldsAsync, filePagesHolding } from '../fileHolds';
import { INDEX_TABLES, initialise } from './schema';
import {
  compileFilters,
  compileSort,
  searchableParameter,
  sortsOnResource,
  type Condition,
  type IndexRead,
  type SearchContext,
  type Sql,
} from './search';
import { runTransaction } from './transaction';
import { dateRange } from './ranges';
import { newServerId } from '../../identity/serverId';

const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const OPTIMIZE_EVERY = 5000;
/** Versions per page of an erasure's look for the person's texts in every stored version. */
const VERSION_PAGE = 500;
/** Rows per page of a scan (a bulk export's read). */
const SCAN_PAGE = 200;
/** How many rows of each filter are counted, at first, to judge which filter is the most selective. */
const SELECTIVITY_PROBE = 1000;
/** How many filters' sizes are kept, and for how many writes (see indexRows). */
const SIZES_KEPT = 1000;
const SIZES_KEPT_FOR = 1000;
/** The least stretch of an ordered index a page is walked along (see walkedPage). */
const WALK_ROWS = 4000;
/** Search statements kept prepared (a search's SQL has one text per shape of query). */
const SEARCH_STATEMENTS = 500;

/** A search's matches: `SELECT r.res FROM ${from} WHERE ${where}`, DISTINCT when `distinct`. */
interface MatchQuery {
  from: string;
  where: Sql;
  distinct: boolean;
  /** The index filter whose table heads the FROM. */
  driver?: IndexRead & { condition: Condition };
  /** The column of the driver's res (where a bound on it reaches the driver's index). */
  key: string;
  /** The driver's matching index rows, as counted to choose it (Infinity when not counted). */
  rows: number;
  /** Every filter, compiled. */
  filters: Condition[];
}

function and(conditions: readonly Sql[]): Sql {
  return {
    sql: conditions.map((c) => `(${c.sql})`).join(' AND '),
    params: conditions.flatMap((c) => c.params),
  };
}

interface ResourceRow {
  res: number;
  version: number;
  deleted: number;
}

interface VersionRow {
  type: string;
  id: string;
  version: number;
  last_updated: string;
  method: string;
  content: string | null;
}

/**
 * The embedded FhirStore: one SQLite file (better-sqlite3, WAL). better-sqlite3 is synchronous, so every
 * operation is one SQLite transaction that runs to completion before the next starts; writes that read
 * first (ifMatch, conditional create/update, transactions) run inside BEGIN IMMEDIATE so that another
 * process sharing the file cannot interleave.
 */
export class EmbeddedStore implements FhirStore {
  readonly kind = 'embedded';
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly searchContext: SearchContext = {
    targetTypes: (resourceType, param) =>
      (this.stmt.targetTypes.all(resourceType, param) as { target_type: string }[]).map((r) => r.target_type),
    dateWidth: (resourceType, param) =>
      (this.stmt.dateWidth.get(resourceType, param) as { width: number } | undefined)?.width,
    matchingIds: (type, condition, limit) => {
      const ids = this.searchStatement(
        `SELECT t.id FROM resource t WHERE t.type = ? AND t.deleted = 0 AND ${condition.sql} LIMIT ?`,
      )
        .pluck()
        .all(type, ...condition.params, limit + 1) as string[];
      return ids.length > limit ? undefined : ids;
    },
  };
  /** The last lastUpdated handed out, so every write gets a strictly later instant than the one before. */
  private lastMs = 0;
  /** Search statements by SQL text (see `search`). */
  private readonly searches = new Map<string, Database.Statement>();
  private writes = 0;
  /** Filters' sizes as last counted (see indexRows). */
  private readonly sizes = new Map<string, { n: number; bound: number; writes: number }>();
  /** The plans of the search statements run, while explainSearch records them. */
  private plans: string[] | undefined;

  private constructor(readonly file: string) {
    loadFhirDefinitions();
    mkdirSync(dirname(resolve(file)), { recursive: true });
    this.db = new Database(file);
    initialise(this.db);
    this.stmt = prepare(this.db);
    const last = this.db.prepare('SELECT MAX(lu_ms) AS ms FROM resource_version').get() as {
      ms: number | null;
    };
    this.lastMs = last.ms ?? 0;
  }

  /** Opens (creating folders, file and schema when absent) the store in `file`. */
  static open(file: string): EmbeddedStore {
    return new EmbeddedStore(file);
  }

  /**
   * The store's file in a data folder: the one name by which the server, and the tools and tests that read
   * what it wrote, find it.
   */
  static defaultFile(dataDir: string): string {
    return join(dataDir, 'fhir-store.sqlite');
  }

  // ---- FhirStore ---------------------------------------------------------------------------------

  async create<T extends Resource>(
    resource: T,
    options?: { ifNoneExist?: string; id?: string },
  ): Promise<WriteResult<T>> {
    return this.immediate(() => this.createSync(resource, options?.ifNoneExist, options?.id));
  }

  async read<T extends Resource>(type: ResourceType, id: string): Promise<T> {
    return this.readSync(type, id) as T;
  }

  async vread<T extends Resource>(type: ResourceType, id: string, versionId: string): Promise<T> {
    const version = Number(versionId);
    const row =
      Number.isInteger(version) && version > 0
        ? (this.stmt.version.get(type, id, version) as VersionRow | undefined)
        : undefined;
    if (!row) {
      throw errors.notFound(`${type} version not found.`);
    }
    if (row.content === null) {
      throw errors.gone(`That version of the ${type} is a deletion.`);
    }
    return JSON.parse(row.content) as T;
  }

  async update<T extends Resource>(
    resource: T & { id: string },
    options?: { ifMatch?: string },
  ): Promise<WriteResult<T>> {
    return this.immediate(() => this.updateSync(resource, options?.ifMatch));
  }

  async conditionalUpdate<T extends Resource>(resource: T, query: string): Promise<WriteResult<T>> {
    return this.immediate(() => this.conditionalUpdateSync(resource, query));
  }

  async delete(type: ResourceType, id: string): Promise<void> {
    this.immediate(() => this.deleteSync(type, id));
  }

  async search<T extends Resource>(request: SearchRequest<T>): Promise<SearchResult<T>> {
    return this.db.transaction(() => this.searchSync(request)).deferred() as SearchResult<T>;
  }

  /**
   * Every match of a search (filters only; no paging, sorting or includes) as the stored JSON text, in
   * storage order, for a bulk export: read in pages by key (`res > last`), each page one short query, so
   * writes go on between pages, memory stays flat and no page costs more than the one before it (OFFSET
   * paging re-reads everything before the page). The rows are walked in rowid order (NOT INDEXED), which
   * the LIMIT stops after one page.
   */
  async *scan(request: SearchRequest): AsyncIterable<Buffer> {
    const where = this.scanWhere(request.resourceType, request);
    // As a BLOB the text comes as its stored bytes, without being decoded into a string.
    const page = this.db.prepare(
      `SELECT r.res, CAST(v.content AS BLOB) AS content FROM resource r NOT INDEXED JOIN resource_version v
         ON v.type = r.type AND v.id = r.id AND v.version = r.version
       WHERE r.res > ? AND ${where.sql} ORDER BY r.res LIMIT ${SCAN_PAGE}`,
    );
    for (let after = 0; ;) {
      const rows = page.all(after, ...where.params) as { res: number; content: Buffer }[];
      for (const row of rows) yield row.content;
      if (rows.length < SCAN_PAGE) return;
      after = rows[rows.length - 1].res;
    }
  }

  /**
   * scanReferences (FhirStore): the walk of `scan`, a page of resources at a time, joined to the reference
   * index (idx_reference_res) instead of the stored text.
   */
  async *scanReferences(request: SearchRequest, param: string): AsyncIterable<string> {
    const where = this.scanWhere(request.resourceType, request);
    const page = this.db.prepare(
      `SELECT p.res, x.target_type, x.target_id FROM (
         SELECT r.res FROM resource r NOT INDEXED WHERE r.res > ? AND ${where.sql} ORDER BY r.res LIMIT ${SCAN_PAGE}
       ) p LEFT JOIN idx_reference x ON x.res = p.res AND x.param = ? AND x.target_id IS NOT NULL
       ORDER BY p.res`,
    );
    for (let after = 0; ;) {
      const rows = page.all(after, ...where.params, param) as {
        res: number;
        target_type: string | null;
        target_id: string | null;
      }[];
      let resources = 0;
      for (const row of rows) {
        if (row.res !== after) resources += 1;
        after = row.res;
        if (row.target_type !== null && row.target_id !== null) yield `${row.target_type}/${row.target_id}`;
      }
      if (resources < SCAN_PAGE) return;
    }
  }

  async history(
    type: ResourceType,
    id: string | undefined,
    options: HistoryOptions = {},
  ): Promise<HistoryResult> {
    return this.db.transaction(() => this.historySync(type, id, options)).deferred();
  }

  async transaction(bundle: Bundle): Promise<Bundle> {
    return this.immediate(() => runTransaction(this, bundle));
  }

  async erasePatientCompartment(patientId: string, options: ErasureOptions = {}): Promise<ErasureReceipt> {
    const members = this.stmt.compartment.all(patientId) as { type: string; id: string }[];
    const receipt = this.immediate(() => this.eraseSetSync(members));
    // Zeroed pages are in the WAL now; copy them into the database file and truncate the WAL so no
    // frame holding erased bytes survives in either file.
    this.checkpoint();
    const texts = [patientId, ...(options.texts ?? [])];
    // Two looks, each able to catch what the other misses: the reference index, and the stored text.
    // The stored text and the files' bytes are read whole (gigabytes at a registry's size), side by side,
    // a page or a chunk at a time, with other requests served in between. Nothing they look for can come
    // back meanwhile: the reservation is recorded, so no write about the person is let in.
    const keys = JSON.stringify(members.map((m) => [m.type, m.id]));
    const [inText, inFiles] = await Promise.all([this.versionsContaining(texts), this.filesHold(texts)]);
    receipt.residual = (this.stmt.indexResidual.get(keys, keys) as { n: number }).n + inText;
    if (receipt.residual === 0 && inFiles) {
      // secure_delete zeroes a cell where a delete frees it, but not an older copy of it: when SQLite
      // shifts or rebuilds a b-tree page's cells it leaves their former bytes in the page's unallocated
      // space (seen in index and WITHOUT ROWID leaf pages: idx_reference_target, idx_token_search,
      // stored_reference). Rare, and possible in any page, so looked for in the bytes rather than
      // prevented, and removed where found.
      await this.clearStaleCopies(texts);
      receipt.residual = (await this.filesHold(texts)) ? 1 : 0;
    }
    return receipt;
  }

  /**
   * Removes the stale copies of `texts` the file scan found. Where each lies in a page of an index, those
   * indexes are rebuilt: REINDEX writes each anew from the live rows and frees its old pages, which
   * secure_delete zeroes (seconds at a registry's size). Anywhere else (a table's page, the WAL), or when
   * a copy outlives that, VACUUM rewrites every page of the store from the live rows (47 s with the store
   * locked at 100,000 persons).
   */
  private async clearStaleCopies(texts: readonly string[]): Promise<void> {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const pages = await filePagesHolding(this.file, texts, pageSize);
    const owners =
      pages.length === 0
        ? []
        : (this.stmt.pageOwners.all(JSON.stringify(pages)) as { name: string; type: string | null }[]);
    if (owners.length > 0 && owners.every((owner) => owner.type === 'index')) {
      for (const { name } of owners) this.db.exec(`REINDEX "${name}"`);
      this.checkpoint();
      if (!(await this.filesHold(texts))) return;
    }
    this.db.exec('VACUUM');
    this.checkpoint();
  }

  /**
   * After an erasure, by the stored text alone (every version of every resource): versions whose JSON
   * holds one of `texts` (the Patient id, the pseudonym) anywhere. One pass over the versions in pages by
   * key, each version's bytes searched in Node (Buffer.includes is several times faster than SQLite's
   * instr(), which compares at every position), the event loop free between pages.
   */
  private async versionsContaining(texts: readonly string[]): Promise<number> {
    const needles = texts.filter((t) => t.length > 0).map((t) => Buffer.from(t, 'utf8'));
    let found = 0;
    for (let after = 0; ;) {
      const rows = this.stmt.versionPage.all(after, VERSION_PAGE) as {
        seq: number;
        content: Buffer | null;
      }[];
      for (const { content } of rows) {
        if (content !== null && needles.some((n) => content.includes(n))) found += 1;
      }
      if (rows.length < VERSION_PAGE) return found;
      after = rows[rows.length - 1].seq;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async eraseResource(type: ResourceType, id: string): Promise<ErasureReceipt> {
    const receipt: ErasureReceipt = { erased: {}, versionsErased: 0, residual: 0 };
    this.immediate(() => this.eraseOneSync(type, id, receipt));
    this.checkpoint(); // as for a compartment: no frame with the erased bytes may stay in the WAL
    receipt.residual = (
      this.db
        .prepare('SELECT COUNT(*) AS n FROM resource_version WHERE type = ? AND id = ?')
        .get(type, id) as { n: number }
    ).n;
    return receipt;
  }

  async ping(): Promise<void> {
    if (!this.db.open) {
      throw errors.serviceUnavailable('The FHIR store is closed.', 5);
    }
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    }
  }

  // ---- synchronous operations (also used by the transaction runner) -------------------------------

  /** Runs fn in BEGIN IMMEDIATE; SQLITE_BUSY from another process becomes a retryable 409. */
  immediate<R>(fn: () => R): R {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      if (err instanceof Error && (err as { code?: string }).code === 'SQLITE_BUSY') {
        throw errors.conflict('The store is busy with a concurrent write; retry the request.');
      }
      throw err;
    }
  }

  createSync<T extends Resource>(resource: T, ifNoneExist?: string, assignedId?: string): WriteResult<T> {
    if (ifNoneExist) {
      const existing = this.matchOne(resource.resourceType, ifNoneExist);
      if (existing) {
        return { resource: existing as T, created: false };
      }
    }
    const id = assignedId ?? newServerId();
    return { resource: this.put(resource, id, 'POST'), created: true };
  }

  readSync(type: string, id: string): Resource {
    const row = this.stmt.current.get(type, id) as ResourceRow | undefined;
    if (!row) {
      throw errors.notFound(`${type} not found.`);
    }
    if (row.deleted) {
      throw errors.gone(`The ${type} has been deleted.`);
    }
    const version = this.stmt.version.get(type, id, row.version) as VersionRow;
    return JSON.parse(version.content as string) as Resource;
  }

  updateSync<T extends Resource>(resource: T & { id: string }, ifMatch?: string): WriteResult<T> {
    if (!resource.id || !isFhirId(resource.id)) {
      throw errors.badRequest('The resource id must be 1-64 letters, digits, "-" or ".".', 'id');
    }
    const row = this.stmt.current.get(resource.resourceType, resource.id) as ResourceRow | undefined;
    if (ifMatch !== undefined && (!row || String(row.version) !== ifMatch)) {
      throw errors.preconditionFailed(
        `The ${resource.resourceType} is not at version ${ifMatch}; read it again and retry.`,
      );
    }
    // The version that brings a resource into being is its create, as HAPI records it too: an
    // update-as-create shows in history as POST / 201, not as an update of something that was there.
    return {
      resource: this.put(resource, resource.id, row ? 'PUT' : 'POST'),
      created: !row || row.deleted === 1,
    };
  }

  conditionalUpdateSync<T extends Resource>(resource: T, query: string): WriteResult<T> {
    const matches = this.matchAll(resource.resourceType, query);
    if (matches.length > 1) {
      throw errors.preconditionFailed(
        'The conditional update matches more than one resource; make it selective.',
      );
    }
    if (matches.length === 1) {
      const id = matches[0].id as string;
      if (resource.id && resource.id !== id) {
        throw errors.badRequest(
          'The resource id differs from the id of the resource the condition matches.',
          'id',
        );
      }
      return this.updateSync({ ...resource, id });
    }
    if (resource.id) {
      return this.updateSync(resource as T & { id: string });
    }
    return this.createSync(resource);
  }

  deleteSync(type: string, id: string): void {
    const row = this.stmt.current.get(type, id) as ResourceRow | undefined;
    if (!row || row.deleted) {
      return;
    }
    const now = this.clock();
    const version = row.version + 1;
    this.stmt.updateCurrent.run(version, now.toISOString(), now.getTime(), 1, row.res);
    this.stmt.insertVersion.run(type, id, version, now.toISOString(), now.getTime(), 'DELETE', null);
    this.clearIndex(row.res);
  }

  searchSync(request: SearchRequest): SearchResult {
    const type = request.resourceType;
    const count = request.count ?? DEFAULT_COUNT;
    const offset = request.offset ?? 0;
    if (!Number.isInteger(count) || count < 0) {
      throw errors.badRequest('_count must be a whole number of 0 or more.', '_count');
    }
    if (!Number.isInteger(offset) || offset < 0) {
      throw errors.badRequest('_offset must be a whole number of 0 or more.', '_offset');
    }
    if (request.total && !['none', 'estimate', 'accurate'].includes(request.total)) {
      throw errors.badRequest('_total must be none, estimate or accurate.', '_total');
    }
    const limit = Math.min(count, MAX_COUNT);
    const query = this.matches(type, request);
    const { from, where, distinct, driver } = query;
    const order = compileSort(type, request.sortRules, 'r', driver);
    const result: SearchResult = { matches: [], included: [] };
    if (limit > 0) {
      // The page is chosen on the index and resource tables alone, then its content read: joined before
      // the ORDER BY, SQLite would sort every match's content to return one page (quadratic over the
      // pages of a large result, and memory in proportion to it).
      const page =
        this.walkedPage(type, request, query, offset + limit + 1)?.slice(offset) ??
        this.searchRows(
          `SELECT ${distinct ? 'DISTINCT ' : ''}r.res FROM ${from} WHERE ${where.sql} ORDER BY ${order.sql} LIMIT ? OFFSET ?`,
          [...where.params, ...order.params, limit + 1, offset],
        ).map((row) => row.res as number);
      if (page.length > limit) {
        page.pop();
        result.nextOffset = offset + limit;
      }
      const content = new Map(
        (
          this.searchStatement(
            `SELECT r.res, v.content FROM resource r JOIN resource_version v
                 ON v.type = r.type AND v.id = r.id AND v.version = r.version
               WHERE r.res IN (SELECT value FROM json_each(?))`,
          ).all(JSON.stringify(page)) as { res: number; content: string }[]
        ).map((row) => [row.res, row.content]),
      );
      const rows = page.map((res) => ({ res, content: content.get(res) as string }));
      result.matches = rows.map((r) => JSON.parse(r.content) as Resource);
      result.included = this.includes(
        request,
        rows.map((r) => r.res),
        result.matches,
      );
    }
    if (request.total === 'accurate' || request.total === 'estimate' || limit === 0) {
      const [row] = this.searchRows(
        `SELECT COUNT(${distinct ? 'DISTINCT r.res' : '*'}) AS n FROM ${from} WHERE ${where.sql}`,
        where.params,
      );
      const n = row.n as number;
      result.total = n;
      if (limit === 0 && n > offset && count > 0) {
        result.nextOffset = offset;
      }
    }
    return result;
  }

  /**
   * The query plans (EXPLAIN QUERY PLAN) of the statements a search runs, each after its SQL: for the
   * benchmark's `--plans` and for reading why a search is slow.
   */
  explainSearch(request: SearchRequest): string[] {
    this.plans = [];
    try {
      this.db.transaction(() => this.searchSync(request)).deferred();
      return this.plans;
    } finally {
      this.plans = undefined;
    }
  }

  /** Runs a search statement (see searchStatement), its plan recorded when explainSearch asks. */
  private searchRows(sql: string, params: unknown[]): Record<string, unknown>[] {
    if (this.plans !== undefined) {
      const steps = this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as {
        id: number;
        parent: number;
        detail: string;
      }[];
      const depth = new Map<number, number>([[0, 0]]);
      const lines = steps.map((s) => {
        depth.set(s.id, (depth.get(s.parent) ?? 0) + 1);
        return `${'  '.repeat(depth.get(s.id) as number)}${s.detail}`;
      });
      this.plans.push([sql.replace(/\s+/g, ' '), ...lines].join('\n'));
    }
    return this.searchStatement(sql).all(...params) as Record<string, unknown>[];
  }

  /**
   * A search's statement, prepared once per SQL text: a search's SQL varies only with the shape of its
   * query, and preparing it again on every write that searches (follow-up Tasks, references) took 2.6 %
   * of busy time (bench/ingest --profile). Bounded: past the bound the cache starts over.
   */
  private searchStatement(sql: string): Database.Statement {
    let statement = this.searches.get(sql);
    if (statement === undefined) {
      if (this.searches.size >= SEARCH_STATEMENTS) this.searches.clear();
      statement = this.db.prepare(sql);
      this.searches.set(sql, statement);
    }
    return statement;
  }

  historySync(type: string, id: string | undefined, options: HistoryOptions): HistoryResult {
    const count = Math.min(options.count ?? DEFAULT_COUNT, MAX_COUNT);
    const offset = options.offset ?? 0;
    const conditions = ['type = ?'];
    const params: unknown[] = [type];
    if (id !== undefined) {
      if (!this.stmt.current.get(type, id)) {
        throw errors.notFound(`${type} not found.`);
      }
      conditions.push('id = ?');
      params.push(id);
    }
    if (options.since) {
      const since = dateRange(options.since);
      if (!since) {
        throw errors.badRequest('_since must be an instant.', '_since');
      }
      conditions.push('lu_ms >= ?');
      params.push(since.lo);
    }
    const where = conditions.join(' AND ');
    const total = (
      this.db.prepare(`SELECT COUNT(*) AS n FROM resource_version WHERE ${where}`).get(...params) as {
        n: number;
      }
    ).n;
    const rows = this.db
      .prepare(`SELECT * FROM resource_version WHERE ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`)
      .all(...params, count, offset) as VersionRow[];
    const entries: HistoryEntry[] = rows.map((r) => ({
      resourceType: r.type as ResourceType,
      id: r.id,
      versionId: String(r.version),
      lastUpdated: r.last_updated,
      method: r.method as HistoryEntry['method'],
      ...(r.content !== null ? { resource: JSON.parse(r.content) as Resource } : {}),
    }));
    return { entries, total, ...(offset + rows.length < total ? { nextOffset: offset + rows.length } : {}) };
  }

  /** Every current match of a conditional query (used by ifNoneExist and conditional update). */
  matchAll(type: string, query: string): Resource[] {
    const request = parseQuery(type, query);
    if (!request.filters?.length) {
      throw errors.badRequest('A conditional operation needs at least one search parameter.');
    }
    return this.searchSync({ ...request, count: 2, offset: 0, total: 'none', include: [], revInclude: [] })
      .matches;
  }

  /** Parses a query string ("identifier=sys|val", "?…" or "Type?…") for a type; bad queries are 400. */
  parseQuery(type: string, query: string): SearchRequest {
    return parseQuery(type, query);
  }

  private matchOne(type: string, query: string): Resource | undefined {
    const matches = this.matchAll(type, query);
    if (matches.length > 1) {
      throw errors.preconditionFailed('The condition matches more than one resource; make it selective.');
    }
    return matches[0];
  }

  // ---- internals ----------------------------------------------------------------------------------

  /** Writes a new version with the store's meta and re-indexes the resource. */
  private put<T extends Resource>(input: T, id: string, method: 'POST' | 'PUT'): T {
    if (!isFhirId(id)) {
      throw errors.badRequest('The resource id must be 1-64 letters, digits, "-" or ".".', 'id');
    }
    const type = input.resourceType;
    const row = this.stmt.current.get(type, id) as ResourceRow | undefined;
    const version = (row?.version ?? 0) + 1;
    const now = this.clock();
    const lastUpdated = now.toISOString();
    const resource = structuredClone(input) as T;
    resource.id = id;
    resource.meta = { ...resource.meta, versionId: String(version), lastUpdated };
    const content = JSON.stringify(resource);
    let res: number;
    if (row) {
      this.stmt.updateCurrent.run(version, lastUpdated, now.getTime(), 0, row.res);
      this.clearIndex(row.res);
      res = row.res;
    } else {
      res = Number(
        this.stmt.insertCurrent.run(type, id, version, lastUpdated, now.getTime()).lastInsertRowid,
      );
    }
    this.stmt.insertVersion.run(type, id, version, lastUpdated, now.getTime(), method, content);
    for (const t of storedReferences(resource)) {
      this.stmt.storedReference.run(t.targetType, t.targetId, type, id, version);
    }
    this.index(res, resource);
    if (++this.writes % OPTIMIZE_EVERY === 0) {
      // Keeps the planner's statistics in step with the data, so it drives searches from the most
      // selective index; cheap when little has changed.
      this.db.pragma('optimize');
    }
    return resource;
  }

  /** Whether the store's files (the database and its write-ahead log) hold any of `texts` as bytes. */
  private filesHold(texts: readonly string[]): Promise<boolean> {
    return fileHoldsAsync([this.file, `${this.file}-wal`], texts);
  }

  /** wal_checkpoint(TRUNCATE) waits (busy_timeout) for readers; if one still holds the WAL, say so. */
  private checkpoint(): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      const [result] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      if (result.busy === 0) {
        return;
      }
    }
    throw errors.serviceUnavailable(
      'The erasure is committed, but the store could not yet overwrite its write-ahead log; retry the erasure.',
      5,
    );
  }

  now(): Date {
    return new Date(Math.max(Date.now(), this.lastMs));
  }

  private clock(): Date {
    this.lastMs = Math.max(Date.now(), this.lastMs + 1);
    return new Date(this.lastMs);
  }

  private index(res: number, resource: Resource): void {
    const rows = extractIndexRows(resource);
    const type = resource.resourceType;
    const s = this.stmt;
    for (const r of rows.token) s.token.run(res, type, r.param, r.system, r.code);
    for (const r of rows.string) s.string.run(res, type, r.param, r.norm, r.raw);
    for (const r of rows.reference) {
      s.reference.run(res, type, r.param, r.targetType, r.targetId, r.ref, r.idSystem, r.idValue);
    }
    for (const r of rows.date) {
      s.date.run(res, type, r.param, r.lo, r.hi);
      s.widenDate.run(type, r.param, r.hi - r.lo);
    }
    for (const r of rows.number) s.number.run(res, type, r.param, r.value);
    for (const r of rows.quantity) s.quantity.run(res, type, r.param, r.value, r.system, r.code, r.unit);
    for (const r of rows.uri) s.uri.run(res, type, r.param, r.uri);
  }

  private clearIndex(res: number): void {
    for (const del of this.stmt.clear) {
      del.run(res);
    }
  }

  /**
   * A search's matches as `FROM … WHERE …`, with `r.res` the matching resource. With an index filter, the
   * most selective one's index table heads the FROM (its rows already stand for current resources of the
   * type: only those are indexed), so a page in storage order is read off that index in order, a count
   * touches the index alone, and the other filters are probed per row. The resource table is joined only
   * where a filter or the order reads its own columns. `distinct`: a resource may come more than once.
   */
  private matches(type: string, request: SearchRequest): MatchQuery {
    const filters = compileFilters(type, request.filters, 'r', this.searchContext);
    const { chosen, rows } = this.driver(filters);
    return { ...this.drivenBy(type, filters, chosen, request.sortRules), rows, filters };
  }

  private drivenBy(
    type: string,
    filters: Condition[],
    driver: Condition | undefined,
    sortRules: SearchRequest['sortRules'],
  ): Pick<MatchQuery, 'from' | 'where' | 'distinct' | 'driver' | 'key'> {
    const read = driver?.index;
    if (read === undefined) {
      return {
        from: 'resource r',
        where: and([{ sql: 'r.type = ? AND r.deleted = 0', params: [type] }, ...filters]),
        distinct: false,
        key: 'r.res',
      };
    }
    const joined = sortsOnResource(sortRules) || filters.some((c) => c.onResource);
    const rest = filters.filter((c) => c !== driver).map((c) => c.correlated ?? c);
    return {
      from: joined ? `${read.table} d JOIN resource r ON r.res = d.res` : `${read.table} r`,
      // Unqualified, the driver's columns are the index table's: the resource table shares only `res`.
      where: and([read.row, ...rest]),
      distinct: !read.single,
      driver: { ...read, condition: driver as Condition },
      key: joined ? 'd.res' : 'r.res',
    };
  }

  /**
   * The WHERE clause of a scan: every filter probes the row the walk is at (its `correlated` form). The
   * form a search is driven from, `res IN (SELECT …)`, would select every match of the filter again for
   * each page: at a registry's size, a page would cost as much as the whole type. The probe is compared
   * as a value (`(EXISTS …) = 1`): a bare EXISTS SQLite (3.45+) makes a semi-join with a Bloom filter that
   * it builds by reading the whole index table on every run of the statement, i.e. on every page (at
   * 100,000 persons a date-filtered scan of the episodes took 19 CPU s instead of under 1).
   */
  private scanWhere(type: string, request: SearchRequest): Sql {
    const conditions: Sql[] = [
      { sql: 'r.type = ? AND r.deleted = 0', params: [type] },
      ...compileFilters(type, request.filters, 'r', this.searchContext).map((c) =>
        c.correlated === undefined ? c : { sql: `(${c.correlated.sql}) = 1`, params: c.correlated.params },
      ),
    ];
    return {
      sql: conditions.map((c) => `(${c.sql})`).join(' AND '),
      params: conditions.flatMap((c) => c.params),
    };
  }

  /**
   * A page in storage order read by walking, in that order, the index of a filter other than the most
   * selective one, when the most selective one matches many rows in no useful order (a date window):
   * sorting all of those to return the first few costs more than walking a stretch of an ordered index
   * and probing the other filters per row. The stretch is bounded (the rows it may take to fill the page
   * if about one in 16 matches); when it does not fill the page the search is answered the usual way.
   */
  private walkedPage(
    type: string,
    request: SearchRequest,
    q: MatchQuery,
    need: number,
  ): number[] | undefined {
    const budget = Math.max(WALK_ROWS, need * 16);
    if (request.sortRules?.length || q.driver === undefined || q.driver.ordered || q.rows <= budget) {
      return undefined;
    }
    const along = q.filters.find((c) => c.index?.ordered);
    if (along === undefined) {
      return undefined;
    }
    const read = along.index as IndexRead;
    const [edge] = this.searchRows(
      `SELECT res FROM ${read.table} WHERE ${read.row.sql} ORDER BY res LIMIT 1 OFFSET ?`,
      [...read.row.params, budget - 1],
    );
    if (edge === undefined) {
      return undefined;
    }
    const walk = this.drivenBy(type, q.filters, along, undefined);
    const page = this.searchRows(
      `SELECT ${walk.distinct ? 'DISTINCT ' : ''}r.res FROM ${walk.from} WHERE ${walk.where.sql} AND ${walk.key} <= ? ORDER BY ${walk.key} LIMIT ?`,
      [...walk.where.params, edge.res, need],
    ).map((row) => row.res as number);
    return page.length === need ? page : undefined;
  }

  /**
   * Of the positive index filters, the one with the fewest matching rows, and how many it matches (index
   * rows; Infinity when it was not counted). They are counted in rounds, each up to a bound that grows
   * eightfold, only as far as the smallest so far and only while more than one reaches the bound:
   * choosing costs a few index steps per row of the chosen filter's matches.
   */
  private driver(filters: readonly Condition[]): { chosen?: Condition; rows: number } {
    // Cheapest to count first (an index range of matches only, then several, then the rest: a date
    // window also steps over values that end before it), so that the dearer are counted only as far as
    // the cheaper came.
    let open = filters
      .filter((c) => c.index !== undefined && c.correlated !== undefined)
      .sort((a, b) => countingCost(a.index as IndexRead) - countingCost(b.index as IndexRead));
    for (let bound = SELECTIVITY_PROBE; open.length > 1; bound *= 8) {
      let best = bound;
      const sizes = open.map((c) => {
        const n = this.indexRows(c.index as IndexRead, best);
        best = Math.min(best, n);
        return n;
      });
      if (best < bound) {
        return { chosen: open[sizes.indexOf(best)], rows: best };
      }
      open = open.filter((_, i) => sizes[i] >= bound);
    }
    return { chosen: open[0], rows: Number.POSITIVE_INFINITY };
  }

  /**
   * How many index rows meet a filter, counted up to `bound`: each alternative on its own, so that
   * each is a range of an index (an OR of several would be read through a set that drops repeats, ten
   * times slower); a row two alternatives both meet is counted twice, which only overstates the size.
   * Counts are kept (planner statistics: they steer the plan, never the answer) until the store has
   * taken SIZES_KEPT_FOR writes since.
   */
  private indexRows(read: IndexRead, bound: number): number {
    const key = `${read.table}\u0000${read.row.sql}\u0000${JSON.stringify(read.row.params)}`;
    const kept = this.sizes.get(key);
    if (kept !== undefined && this.writes - kept.writes < SIZES_KEPT_FOR) {
      if (kept.n < kept.bound || bound <= kept.bound) return Math.min(kept.n, bound);
    }
    let n = 0;
    for (const alternative of read.alternatives) {
      n += (
        this.searchStatement(
          `SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${read.table} WHERE ${alternative.sql} LIMIT ?)`,
        ).get(...alternative.params, bound - n) as { n: number }
      ).n;
      if (n >= bound) {
        n = bound;
        break;
      }
    }
    if (this.sizes.size >= SIZES_KEPT) this.sizes.clear();
    this.sizes.set(key, { n, bound, writes: this.writes });
    return n;
  }

  /** _include (targets of the page's references) and _revinclude (resources referring to the page). */
  private includes(request: SearchRequest, resIds: number[], matches: Resource[]): Resource[] {
    if (resIds.length === 0 || (!request.include?.length && !request.revInclude?.length)) {
      return [];
    }
    const seen = new Set(matches.map((m) => `${m.resourceType}/${m.id}`));
    const out: Resource[] = [];
    const add = (rows: { content: string }[]): void => {
      for (const row of rows) {
        const r = JSON.parse(row.content) as Resource;
        const key = `${r.resourceType}/${r.id}`;
        if (!seen.has(key)) {
          seen.add(key);
          out.push(r);
        }
      }
    };
    const list = resIds.map(() => '?').join(',');
    for (const inc of request.include ?? []) {
      if (inc.resourceType !== request.resourceType) {
        continue;
      }
      const param = searchableParameter(inc.resourceType, inc.searchParam);
      if (param.type !== 'reference') {
        throw errors.badRequest(
          `_include needs a reference parameter; '${inc.searchParam}' is not one.`,
          '_include',
        );
      }
      const typeCondition = inc.targetType ? 'AND t.type = ?' : '';
      add(
        this.db
          .prepare(
            `SELECT DISTINCT v.content FROM idx_reference x
               JOIN resource t ON t.type = x.target_type AND t.id = x.target_id AND t.deleted = 0
               JOIN resource_version v ON v.type = t.type AND v.id = t.id AND v.version = t.version
             WHERE x.res IN (${list}) AND x.param = ? ${typeCondition}`,
          )
          .all(...resIds, inc.searchParam, ...(inc.targetType ? [inc.targetType] : [])) as {
          content: string;
        }[],
      );
    }
    const ids = matches.map((m) => m.id);
    const idList = ids.map(() => '?').join(',');
    for (const inc of request.revInclude ?? []) {
      const param = searchableParameter(inc.resourceType, inc.searchParam);
      if (param.type !== 'reference') {
        throw errors.badRequest(
          `_revinclude needs a reference parameter; '${inc.searchParam}' is not one.`,
          '_revinclude',
        );
      }
      add(
        this.db
          .prepare(
            `SELECT DISTINCT v.content FROM idx_reference x
               JOIN resource s ON s.res = x.res AND s.deleted = 0
               JOIN resource_version v ON v.type = s.type AND v.id = s.id AND v.version = s.version
             WHERE x.rtype = ? AND x.param = ? AND x.target_type = ? AND x.target_id IN (${idList})`,
          )
          .all(inc.resourceType, inc.searchParam, request.resourceType, ...ids) as { content: string }[],
      );
    }
    return out;
  }

  /** Erases one resource: its current row and index rows, every version, the references it made. */
  private eraseOneSync(type: string, id: string, receipt: ErasureReceipt): void {
    const erased = this.eraseSetSync([{ type, id }]);
    receipt.versionsErased += erased.versionsErased;
    for (const [t, n] of Object.entries(erased.erased)) {
      receipt.erased[t] = (receipt.erased[t] ?? 0) + n;
    }
  }

  /**
   * Erases a set of resources (current rows, index rows, every version, the references they made).
   * Set-based: each table is cleared in one statement over the set, so the cost is a handful of
   * index-driven statements whatever the number of resources.
   */
  private eraseSetSync(targets: readonly { type: string; id: string }[]): ErasureReceipt {
    const receipt: ErasureReceipt = { erased: {}, versionsErased: 0, residual: 0 };
    if (targets.length === 0) {
      return receipt;
    }
    const keys = JSON.stringify(targets.map((t) => [t.type, t.id]));
    const rows = this.stmt.eraseCurrent.all(keys) as { res: number; type: string; id: string }[];
    if (rows.length > 0) {
      const resIds = JSON.stringify(rows.map((r) => r.res));
      for (const del of this.stmt.clearSet) {
        del.run(resIds);
      }
    }
    const versions = this.stmt.eraseVersions.all(keys) as { type: string; id: string }[];
    this.stmt.eraseRefsFrom.run(keys);
    receipt.versionsErased = versions.length;
    const erased = new Set<string>();
    for (const r of [...rows, ...versions]) {
      const key = `${r.type}/${r.id}`;
      if (!erased.has(key)) {
        erased.add(key);
        receipt.erased[r.type] = (receipt.erased[r.type] ?? 0) + 1;
      }
    }
    return receipt;
  }
}

/** How dear a filter's index rows are to count, in rank (see driver). */
function countingCost(read: IndexRead): number {
  if (read.ordered) return 0;
  return read.alternatives.every((a) => a.via !== undefined) ? 1 : 2;
}

function parseQuery(type: string, query: string): SearchRequest {
  const q = query.startsWith('?') ? query.slice(1) : query.slice(query.indexOf('?') + 1);
  if (!q) {
    return { resourceType: type as ResourceType };
  }
  try {
    return parseSearchRequest(`${type}?${q}`);
  } catch (err) {
    if (err instanceof FhirError) {
      throw err;
    }
    throw errors.badRequest(`The condition '${q}' is not a valid search.`);
  }
}

function prepare(db: Database.Database) {
  return {
    current: db.prepare('SELECT res, version, deleted FROM resource WHERE type = ? AND id = ?'),
    targetTypes: db.prepare(
      'SELECT DISTINCT target_type FROM idx_reference WHERE rtype = ? AND param = ? AND target_type IS NOT NULL',
    ),
    version: db.prepare('SELECT * FROM resource_version WHERE type = ? AND id = ? AND version = ?'),
    insertCurrent: db.prepare(
      'INSERT INTO resource (type, id, version, last_updated, lu_ms, deleted) VALUES (?, ?, ?, ?, ?, 0)',
    ),
    updateCurrent: db.prepare(
      'UPDATE resource SET version = ?, last_updated = ?, lu_ms = ?, deleted = ? WHERE res = ?',
    ),
    insertVersion: db.prepare(
      'INSERT INTO resource_version (type, id, version, last_updated, lu_ms, method, content) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    token: db.prepare('INSERT INTO idx_token (res, rtype, param, system, code) VALUES (?, ?, ?, ?, ?)'),
    string: db.prepare('INSERT INTO idx_string (res, rtype, param, norm, raw) VALUES (?, ?, ?, ?, ?)'),
    reference: db.prepare(
      'INSERT INTO idx_reference (res, rtype, param, target_type, target_id, ref, id_system, id_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    date: db.prepare('INSERT INTO idx_date (res, rtype, param, lo, hi) VALUES (?, ?, ?, ?, ?)'),
    widenDate: db.prepare(
      `INSERT INTO idx_date_width (rtype, param, width) VALUES (?, ?, ?)
       ON CONFLICT (rtype, param) DO UPDATE SET width = excluded.width WHERE excluded.width > width`,
    ),
    dateWidth: db.prepare('SELECT width FROM idx_date_width WHERE rtype = ? AND param = ?'),
    number: db.prepare('INSERT INTO idx_number (res, rtype, param, value) VALUES (?, ?, ?, ?)'),
    quantity: db.prepare(
      'INSERT INTO idx_quantity (res, rtype, param, value, system, code, unit) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    uri: db.prepare('INSERT INTO idx_uri (res, rtype, param, uri) VALUES (?, ?, ?, ?)'),
    storedReference: db.prepare(
      'INSERT OR IGNORE INTO stored_reference (target_type, target_id, src_type, src_id, src_version) VALUES (?, ?, ?, ?, ?)',
    ),
    clear: INDEX_TABLES.map((t) => db.prepare(`DELETE FROM ${t} WHERE res = ?`)),
    // Erasure. Sets are passed as JSON arrays: of [type, id] pairs (`keys`) or of res numbers.
    // The compartment: the Patient, whatever any version of any resource ever referred to it with, and
    // whatever referred to one of those (a QuestionnaireResponse that names only the person's Encounter
    // is about the person too), through the reference index, to the end.
    compartment: db.prepare(
      `WITH RECURSIVE member(type, id) AS (
         SELECT 'Patient', ?
         UNION
         SELECT s.src_type, s.src_id FROM member m
           JOIN stored_reference s ON s.target_type = m.type AND s.target_id = m.id
       )
       SELECT type, id FROM member`,
    ),
    // After an erasure, by the reference index: references to a member, and versions of a member, left.
    // dbstat (every b-tree's pages, walked whole) says whose the pages are; sqlite_schema, what that is.
    pageOwners: db.prepare(
      `SELECT DISTINCT d.name, m.type FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name
       WHERE d.pageno IN (SELECT value FROM json_each(?))`,
    ),
    versionPage: db.prepare(
      'SELECT seq, CAST(content AS BLOB) AS content FROM resource_version WHERE seq > ? ORDER BY seq LIMIT ?',
    ),
    indexResidual: db.prepare(
      `SELECT (SELECT COUNT(*) FROM stored_reference
                WHERE (target_type, target_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?)))
            + (SELECT COUNT(*) FROM resource_version
                WHERE (type, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))) AS n`,
    ),
    eraseCurrent: db.prepare(
      `DELETE FROM resource WHERE (type, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))
       RETURNING res, type, id`,
    ),
    clearSet: INDEX_TABLES.map((t) =>
      db.prepare(`DELETE FROM ${t} WHERE res IN (SELECT value FROM json_each(?))`),
    ),
    eraseVersions: db.prepare(
      `DELETE FROM resource_version WHERE (type, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))
       RETURNING type, id`,
    ),
    eraseRefsFrom: db.prepare(
      `DELETE FROM stored_reference WHERE (src_type, src_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))`,
    ),
  };
}
