import {
  getSearchParameter,
  parseParameter,
  splitSearchOnComma,
  type Filter,
  type SortRule,
} from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';
import { errors } from '../../fhir/outcomes';
import { isFhirId, parseReference } from '../../fhir/reference';
import { indexedParameters, type IndexedParameter } from './extract';
import { normaliseForSearch, searchPrefixes } from './normalise';
import { dateRange, numberRange, type Range } from './ranges';

/**
 * Compiles FHIR search filters (as parsed by @medplum/core's parseSearchRequest) into SQL conditions on
 * the `resource` row aliased `alias`. Every condition is `alias.res [NOT] IN (SELECT res FROM idx_… …)`
 * so SQLite can drive the query from the index tables.
 */

export interface Sql {
  sql: string;
  params: unknown[];
}

const UNBOUNDED_OPERATORS = new Set(['missing', 'present']);
const MODIFIERS = new Set([
  'exact',
  'contains',
  'missing',
  'present',
  'not',
  'identifier',
  'text',
  'in',
  'not-in',
  'above',
  'below',
  'of-type',
  'iterate',
]);

function unsupported(code: string, operator: string, type: string): never {
  throw errors.badRequest(
    `The modifier or prefix '${operator}' is not supported for the ${type} search parameter '${code}'.`,
    code,
  );
}

/** The definition of a search parameter the store can search by, or a 400 saying why not. */
export function searchableParameter(resourceType: string, code: string): IndexedParameter {
  const found = indexedParameters(resourceType).find((p) => p.code === code);
  if (found) {
    return found;
  }
  const definition: SearchParameter | undefined = getSearchParameter(resourceType, code);
  if (!definition) {
    throw errors.badRequest(`Unknown search parameter '${code}' for ${resourceType}.`, code);
  }
  throw errors.badRequest(
    `The ${definition.type} search parameter '${code}' is not supported by this server.`,
    code,
  );
}

/** What the compiler may ask the store while compiling. */
export interface SearchContext {
  /** The resource types that references of this (type, parameter) currently point at. */
  targetTypes(resourceType: string, param: string): string[];
  /** The widest range (hi - lo) a value of this date parameter has had; undefined when none is stored. */
  dateWidth?(resourceType: string, param: string): number | undefined;
  /** The ids of the current resources of `type` that meet `condition` (on alias `t`) when there are at
   * most `limit`; undefined when there are more. */
  matchingIds?(type: string, condition: Sql, limit: number): string[] | undefined;
}

/** Up to how many targets a chained filter is resolved to before the search (see compileChain). */
const CHAIN_TARGETS = 20;

/**
 * A compiled filter. `sql` is the condition on the resource row. A positive index condition also comes
 * as `driver` (a SELECT of matching res, to drive the query from), `index` (the same as a condition on
 * one row of one index table, columns unqualified, so that the table itself can head the query's FROM)
 * and `correlated` (an EXISTS probing the index for one row), so the store can drive from the most
 * selective filter and probe the rest. `onResource`: the condition reads the resource row's own columns
 * (`id`, `lu_ms`), not only `res`.
 */
export interface Condition extends Sql {
  driver?: Sql;
  index?: IndexRead;
  correlated?: Sql;
  onResource?: boolean;
}

/** A filter as rows of one index table: `row` holds for the rows of the matching resources. */
export interface IndexRead {
  table: string;
  /** The search parameter. */
  param: string;
  row: Sql;
  /** `row` as its alternatives (any may hold), each a condition an index can serve alone. */
  alternatives: RowSql[];
  /** At most one row of a resource meets `row` (a single-valued date, number or quantity). */
  single: boolean;
  /** The rows that meet `row` come in `res` order from a search index (one alternative with `via`), so
   * the matches can be walked in storage order. */
  ordered: boolean;
}

/**
 * A condition on one index row. `via`: the search index whose rows meeting it come in `res` order
 * (every column before `res` pinned by equality), which also finds one resource's rows by a seek.
 */
type RowSql = Sql & { via?: string };

/** `alternatives`: conditions on one row of `table` (any may hold) for the parameter `param` of `type`. */
function indexCondition(
  alias: string,
  [table, type, param]: [string, string, string],
  given: RowSql[],
  correlated: Sql,
  { negate = false, single = false } = {},
): Condition {
  const alternatives: RowSql[] = given.map((a) => ({
    sql: `rtype = ? AND param = ? AND ${a.sql}`,
    params: [type, param, ...a.params],
    via: a.via,
  }));
  // Each alternative is its own SELECT, so every one of them can use an index; UNION ALL keeps
  // duplicates, which IN ignores.
  const driver = {
    sql: alternatives.map((a) => `SELECT res FROM ${table} WHERE ${a.sql}`).join(' UNION ALL '),
    params: alternatives.flatMap((a) => a.params),
  };
  if (negate) {
    return { sql: `${alias}.res NOT IN (${driver.sql})`, params: driver.params };
  }
  const row = or(alternatives);
  // Probed through the search index where it serves every alternative, by value and then res: the rows
  // of one value lie together, which a walk in storage order reads in order, where the per-resource
  // index interleaves the rows of every parameter of every type (ten times the pages for a probe).
  const via = new Set(alternatives.map((a) => a.via));
  const probe =
    via.size === 1 && !via.has(undefined)
      ? {
          sql: `EXISTS (SELECT 1 FROM ${table} INDEXED BY ${alternatives[0].via} WHERE (${row.sql}) AND res = ${alias}.res)`,
          params: row.params,
        }
      : correlated;
  return {
    sql: `${alias}.res IN (${driver.sql})`,
    params: driver.params,
    driver,
    index: {
      table,
      param,
      row,
      alternatives,
      single: single && alternatives.length === 1,
      ordered: given.length === 1 && given[0].via !== undefined,
    },
    correlated: probe,
  };
}

export function compileFilters(
  resourceType: string,
  filters: Filter[] | undefined,
  alias: string,
  context: SearchContext,
): Condition[] {
  // Repeated filters on a parameter a resource holds at most one value of (authored=ge…&authored=lt…)
  // must hold for that one value, so they become one index probe: a window instead of two half-lines.
  const merged = new Map<string, Filter[]>();
  const rest: Filter[] = [];
  for (const f of filters ?? []) {
    const param = isPlain(f) ? indexedParameters(resourceType).find((p) => p.code === f.code) : undefined;
    if (param && !param.array && ONE_ROW_PER_VALUE.has(param.type)) {
      merged.set(f.code, [...(merged.get(f.code) ?? []), f]);
    } else {
      rest.push(f);
    }
  }
  const out: Condition[] = [];
  for (const [code, group] of merged) {
    const param = searchableParameter(resourceType, code);
    const rows = group.map((f) => or(rowAlternatives(param, f.operator, splitSearchOnComma(f.value))));
    if (param.type === 'date') {
      rows.push(...startBound(group, context.dateWidth?.(resourceType, code)));
    }
    const where = { sql: rows.map((r) => `(${r.sql})`).join(' AND '), params: rows.flatMap((r) => r.params) };
    out.push(
      indexCondition(
        alias,
        [`idx_${param.type}`, resourceType, code],
        [where],
        {
          sql: `EXISTS (SELECT 1 FROM ${probeTable(param.type)} WHERE res = ${alias}.res AND param = ? AND ${where.sql})`,
          params: [code, ...where.params],
        },
        { single: true },
      ),
    );
  }
  out.push(...rest.map((f) => compileFilter(resourceType, f, alias, context)));
  return out;
}

/** Date prefixes whose matches all end at or after the start of the searched range (hi >= q.lo). */
const REACHES_START = new Set(['eq', 'gt', 'ge', 'sa']);

/**
 * For a date search with a lower bound (`authored=ge2024-04`), the same bound stated on `lo`: a match ends
 * at or after the bound's start and no value is wider than `width`, so it starts at most `width` before
 * it. The index on (lo, hi) then reads the window alone instead of every value after (or before) it.
 */
function startBound(group: readonly Filter[], width: number | undefined): Sql[] {
  if (width === undefined) {
    return [];
  }
  const starts = group
    .filter((f) => REACHES_START.has(f.operator))
    .map((f) =>
      Math.min(...splitSearchOnComma(f.value).map((v) => dateRange(v)?.lo ?? Number.NEGATIVE_INFINITY)),
    );
  const start = Math.max(...starts);
  return Number.isFinite(start) ? [{ sql: 'lo >= ?', params: [start - width] }] : [];
}

/**
 * An index table read for one resource row. The planner, misled by skewed statistics (a popular
 * organisation looks as selective as a patient), may otherwise probe through the value index and scan
 * thousands of rows per candidate; the per-resource index always touches a handful.
 */
function probeTable(type: string): string {
  return `idx_${type} INDEXED BY idx_${type}_res`;
}

const NEGATABLE = new Set(['token', 'reference', 'uri']);
/** Types whose single value is exactly one index row (a CodeableConcept, Reference or name is not). */
const ONE_ROW_PER_VALUE = new Set(['date', 'number', 'quantity']);

/** A filter on an indexed parameter itself (not a chain, _id, _lastUpdated, _has or :missing). */
function isPlain(f: Filter): boolean {
  return !f.code.includes('.') && !f.code.startsWith('_') && !UNBOUNDED_OPERATORS.has(f.operator);
}

function compileFilter(
  resourceType: string,
  filter: Filter,
  alias: string,
  context: SearchContext,
): Condition {
  const { code, operator, value } = filter;
  if (code.startsWith('_has')) {
    throw errors.badRequest('Reverse chaining (_has) is not supported by this server.', code);
  }
  if (code.includes('.')) {
    return compileChain(resourceType, filter, alias, context);
  }
  if (code === '_id') {
    const ids = splitSearchOnComma(value);
    if (operator !== 'eq' && operator !== 'not') {
      unsupported(code, operator, 'token');
    }
    const list = ids.map(() => '?').join(',');
    return {
      sql: `${alias}.id ${operator === 'not' ? 'NOT ' : ''}IN (${list})`,
      params: ids,
      onResource: true,
    };
  }
  if (code === '_lastUpdated') {
    const parts = splitSearchOnComma(value).map((v) => {
      const range = dateRange(v);
      if (!range) {
        throw errors.badRequest(`'${v}' is not a valid date for _lastUpdated.`, code);
      }
      return dateCondition(operator, range, `${alias}.lu_ms`, `${alias}.lu_ms`, code);
    });
    return { ...or(parts), onResource: true };
  }
  const param = searchableParameter(resourceType, code);
  if (UNBOUNDED_OPERATORS.has(operator)) {
    const missing = (operator === 'missing') === (value === 'true');
    if (value !== 'true' && value !== 'false') {
      throw errors.badRequest(`:${operator} takes true or false.`, code);
    }
    return {
      sql: `${alias}.res ${missing ? 'NOT ' : ''}IN (SELECT res FROM idx_${param.type} WHERE rtype = ? AND param = ?)`,
      params: [resourceType, code],
    };
  }
  const values = splitSearchOnComma(value);
  let negate = false;
  let op: string = operator;
  if (op === 'not' && NEGATABLE.has(param.type)) {
    negate = true;
    op = 'eq';
  }
  // Each alternative (comma-separated values, prefix variants, reference forms) can use an index.
  const alternatives = rowAlternatives(param, op, values);
  const any = or(alternatives);
  const correlated = {
    sql: `EXISTS (SELECT 1 FROM ${probeTable(param.type)} WHERE res = ${alias}.res AND param = ? AND (${any.sql}))`,
    params: [code, ...any.params],
  };
  return indexCondition(alias, [`idx_${param.type}`, resourceType, code], alternatives, correlated, {
    negate,
  });
}

function or(parts: Sql[]): Sql {
  if (parts.length === 1) {
    return parts[0];
  }
  return { sql: parts.map((p) => `(${p.sql})`).join(' OR '), params: parts.flatMap((p) => p.params) };
}

/** The alternative conditions on one index row of the parameter's table (any one may match). */
function rowAlternatives(param: IndexedParameter, op: string, values: string[]): RowSql[] {
  const code = param.code;
  switch (param.type) {
    case 'token':
      if (op !== 'eq') {
        unsupported(code, op, 'token');
      }
      return values.map(tokenCondition);
    case 'string':
      if (op !== 'eq' && op !== 'exact' && op !== 'contains') {
        unsupported(code, op, 'string');
      }
      return values.flatMap((v) => stringConditions(op, v));
    case 'reference':
      if (op === 'identifier') {
        return values.map((v) => {
          const t = tokenCondition(v);
          return {
            sql: t.sql.replace(/\bsystem\b/g, 'id_system').replace(/\bcode\b/g, 'id_value'),
            params: t.params,
            via: t.via && 'idx_reference_ident',
          };
        });
      }
      if (op !== 'eq') {
        unsupported(code, op, 'reference');
      }
      return values.flatMap(referenceConditions);
    case 'date':
      return values.map((v) => {
        const range = dateRange(v);
        if (!range) {
          throw errors.badRequest(`'${v}' is not a valid date for '${code}'.`, code);
        }
        return dateCondition(op, range, 'lo', 'hi', code);
      });
    case 'number':
      return values.map((v) => numberCondition(op, v, code));
    case 'quantity':
      return values.map((v) => {
        const [number, system, unit] = v.split('|');
        const n = numberCondition(op, number, code);
        const parts = [n.sql];
        const params = [...n.params];
        if (system) {
          parts.push('system = ?');
          params.push(system);
        }
        if (unit) {
          parts.push('(code = ? OR unit = ?)');
          params.push(unit, unit);
        }
        return { sql: parts.join(' AND '), params };
      });
    case 'uri':
      if (op === 'below') {
        return values.map((v) => ({ sql: 'substr(uri, 1, length(?)) = ?', params: [v, v] }));
      }
      if (op === 'above') {
        return values.map((v) => ({ sql: 'substr(?, 1, length(uri)) = uri', params: [v] }));
      }
      if (op !== 'eq') {
        unsupported(code, op, 'uri');
      }
      return values.map((v) => ({ sql: 'uri = ?', params: [v], via: 'idx_uri_search' }));
  }
}

/** `system|code`, `|code` (no system), `system|` (any code of the system), `code` (any system). */
function tokenCondition(value: string): RowSql {
  const bar = value.indexOf('|');
  if (bar < 0) {
    return { sql: 'code = ?', params: [value] };
  }
  const system = value.slice(0, bar);
  const code = value.slice(bar + 1);
  if (system === '') {
    return { sql: 'system IS NULL AND code = ?', params: [code], via: 'idx_token_search' };
  }
  if (code === '') {
    return { sql: 'system = ?', params: [system] };
  }
  return { sql: 'code = ? AND system = ?', params: [code, system], via: 'idx_token_search' };
}

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}

function stringConditions(op: string, value: string): Sql[] {
  if (op === 'exact') {
    return [{ sql: 'raw = ?', params: [value] }];
  }
  if (op === 'contains') {
    return [{ sql: "norm LIKE ? ESCAPE '\\'", params: [`%${likeEscape(normaliseForSearch(value))}%`] }];
  }
  // Starts-with as a range on the normalised column, so the index serves it.
  return searchPrefixes(value).map((p) => ({ sql: 'norm >= ? AND norm < ?', params: [p, p + '\u{10FFFF}'] }));
}

/** "Type/id" (or a version of it) matches the parsed target; a bare id any type; anything else as written. */
function referenceConditions(value: string): RowSql[] {
  const parsed = parseReference(value);
  if (parsed.ok && parsed.reference.kind === 'literal') {
    const { resourceType, id } = parsed.reference;
    return [
      { sql: 'target_type = ? AND target_id = ?', params: [resourceType, id], via: 'idx_reference_search' },
    ];
  }
  if (isFhirId(value)) {
    return [{ sql: 'target_id = ?', params: [value] }];
  }
  return [{ sql: 'ref = ?', params: [value], via: 'idx_reference_ref' }];
}

/**
 * FHIR date prefixes compare the resource's range [lo, hi] with the search value's range [q.lo, q.hi]:
 * eq = contained in, gt/lt = extends beyond, sa/eb = wholly after/before, ge/le = gt/lt or eq,
 * ap = overlaps the search range widened by 10% of its distance from now (at least a day).
 */
function dateCondition(op: string, q: Range, lo: string, hi: string, code: string): Sql {
  // Since lo <= hi always holds, each case also states a plain bound on lo or hi that an index can serve.
  const eq = `(${lo} >= ? AND ${hi} <= ?)`;
  switch (op) {
    case 'eq':
      return { sql: `${lo} >= ? AND ${lo} <= ? AND ${hi} <= ?`, params: [q.lo, q.hi, q.hi] };
    case 'ne':
      return { sql: `NOT ${eq}`, params: [q.lo, q.hi] };
    case 'gt':
      return { sql: `${hi} > ?`, params: [q.hi] };
    case 'lt':
      return { sql: `${lo} < ?`, params: [q.lo] };
    case 'ge':
      return { sql: `${hi} >= ? AND (${hi} > ? OR ${eq})`, params: [q.lo, q.hi, q.lo, q.hi] };
    case 'le':
      return { sql: `${lo} <= ? AND (${lo} < ? OR ${eq})`, params: [q.hi, q.lo, q.lo, q.hi] };
    case 'sa':
      return { sql: `${lo} > ?`, params: [q.hi] };
    case 'eb':
      return { sql: `${hi} < ?`, params: [q.lo] };
    case 'ap': {
      const margin = Math.max(86400000, Math.abs(Date.now() - q.lo) * 0.1);
      return { sql: `${lo} <= ? AND ${hi} >= ?`, params: [q.hi + margin, q.lo - margin] };
    }
    default:
      return unsupported(code, op, 'date');
  }
}

function numberCondition(op: string, value: string, code: string): Sql {
  const range = numberRange(value);
  if (!range) {
    throw errors.badRequest(`'${value}' is not a valid number for '${code}'.`, code);
  }
  const n = Number(value);
  switch (op) {
    case 'eq':
      return { sql: 'value >= ? AND value < ?', params: [range.lo, range.hi] };
    case 'ne':
      return { sql: 'NOT (value >= ? AND value < ?)', params: [range.lo, range.hi] };
    case 'gt':
    case 'sa':
      return { sql: 'value > ?', params: [n] };
    case 'lt':
    case 'eb':
      return { sql: 'value < ?', params: [n] };
    case 'ge':
      return { sql: 'value >= ?', params: [n] };
    case 'le':
      return { sql: 'value <= ?', params: [n] };
    case 'ap':
      return { sql: 'value >= ? AND value <= ?', params: [n - Math.abs(n) * 0.1, n + Math.abs(n) * 0.1] };
    default:
      return unsupported(code, op, 'number');
  }
}

/**
 * One level of chaining: `subject:Patient.identifier=sys|val` or `subject.identifier=…`. The target
 * types are the type modifier, or the reference parameter's targets that define the chained parameter.
 */
function compileChain(
  resourceType: string,
  filter: Filter,
  alias: string,
  context: SearchContext,
): Condition {
  const dot = filter.code.indexOf('.');
  const [refCode, typeModifier] = filter.code.slice(0, dot).split(':');
  const rest = filter.code.slice(dot + 1);
  if (rest.includes('.')) {
    throw errors.badRequest('Chained search is supported one level deep only.', filter.code);
  }
  const reference = searchableParameter(resourceType, refCode);
  if (reference.type !== 'reference') {
    throw errors.badRequest(`'${refCode}' is not a reference parameter and cannot be chained.`, filter.code);
  }
  const [chainedCode, modifier = ''] = rest.split(':');
  if (modifier && !MODIFIERS.has(modifier)) {
    throw errors.badRequest(`Unknown modifier ':${modifier}'.`, filter.code);
  }
  const candidates = typeModifier ? [typeModifier] : (reference.definition.target ?? []);
  if (typeModifier && !(reference.definition.target ?? []).includes(typeModifier as never)) {
    throw errors.badRequest(`'${refCode}' cannot refer to ${typeModifier}.`, filter.code);
  }
  const targets = candidates.filter((t) => getSearchParameter(t, chainedCode) !== undefined);
  if (targets.length === 0) {
    throw errors.badRequest(`Unknown chained search parameter '${chainedCode}'.`, filter.code);
  }
  // Only the types the store actually holds references to are worth a subquery each.
  const present = new Set(context.targetTypes(resourceType, refCode));
  // Conditions on one reference row (columns unqualified): it points at a match of the chained filter.
  // A chained filter that names a few resources (an identifier) becomes those references themselves, so
  // the reference index is read in storage order; one that matches many stays a subquery.
  const probes: Sql[] = targets
    .filter((t) => present.has(t))
    .flatMap((t) => {
      const definition = getSearchParameter(t, chainedCode) as SearchParameter;
      let sub: Filter;
      try {
        sub = parseParameter(definition, modifier, filter.value);
      } catch {
        throw errors.badRequest(
          `The value of '${filter.code}' is not valid for a ${definition.type} parameter.`,
          filter.code,
        );
      }
      const condition = compileFilter(t, sub, 't', context);
      const ids = context.matchingIds?.(t, condition, CHAIN_TARGETS);
      if (ids !== undefined) {
        return ids.map((id) => ({
          sql: 'target_type = ? AND target_id = ?',
          params: [t, id],
          via: 'idx_reference_search',
        }));
      }
      return [
        {
          sql:
            `target_type = ? AND target_id IN ` +
            `(SELECT t.id FROM resource t WHERE t.type = ? AND t.deleted = 0 AND ${condition.sql})`,
          params: [t, t, ...condition.params],
        },
      ];
    });
  if (probes.length === 0) {
    return { sql: '0', params: [] };
  }
  const any = or(probes);
  return indexCondition(alias, ['idx_reference', resourceType, refCode], probes, {
    sql: `EXISTS (SELECT 1 FROM ${probeTable('reference')} WHERE res = ${alias}.res AND param = ? AND (${any.sql}))`,
    params: [refCode, ...any.params],
  });
}

/** Whether a sort reads the resource row's own columns (`id`, `lu_ms`). */
export function sortsOnResource(rules: SortRule[] | undefined): boolean {
  return (rules ?? []).some((rule) => rule.code === '_id' || rule.code === '_lastUpdated');
}

/**
 * ORDER BY terms for _sort; ties fall back to insertion order. When the search is read off the index
 * rows of a single-valued parameter (`driver`) and sorts by that parameter first, the first term is the
 * driver row's own value: then the index, already in that order, serves the sort.
 */
export function compileSort(
  resourceType: string,
  rules: SortRule[] | undefined,
  alias: string,
  driver?: IndexRead,
): Sql {
  const terms: string[] = [];
  const params: unknown[] = [];
  for (const [i, rule] of (rules ?? []).entries()) {
    const dir = rule.descending ? 'DESC' : 'ASC';
    if (rule.code === '_id' || rule.code === '_lastUpdated') {
      terms.push(`${alias}.${rule.code === '_id' ? 'id' : 'lu_ms'} ${dir}`);
      continue;
    }
    const param = searchableParameter(resourceType, rule.code);
    const column: Record<string, string> = {
      token: 'code',
      string: 'norm',
      reference: 'ref',
      number: 'value',
      quantity: 'value',
      uri: 'uri',
      date: rule.descending ? 'hi' : 'lo',
    };
    if (i === 0 && driver?.single && driver.param === rule.code) {
      // Unqualified: the driver's column (the resource table has none of these names).
      terms.push(`${column[param.type]} ${dir}`);
      continue;
    }
    const agg = rule.descending ? 'MAX' : 'MIN';
    const expr = `(SELECT ${agg}(${column[param.type]}) FROM ${probeTable(param.type)} WHERE res = ${alias}.res AND param = ?)`;
    // Resources without a value sort last either way.
    terms.push(`${expr} ${dir} NULLS LAST`);
    params.push(rule.code);
  }
  terms.push(`${alias}.res ASC`);
  return { sql: terms.join(', '), params };
}
