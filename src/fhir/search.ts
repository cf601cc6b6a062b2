import { getSearchParameters, parseSearchRequest, type SearchRequest } from '@medplum/core';
import type { ResourceType, SearchParameter } from '@medplum/fhirtypes';
import { errors } from './outcomes';
import { isResourceType } from './resourceTypes';
import { parseElements, type Subsetting } from './subsetting';

/**
 * Turns search parameters (query string or `_search` form) into a SearchRequest for the store, after
 * rejecting what the store would silently misread: unknown parameters, unknown modifiers, malformed
 * control parameters. @medplum/core's parseSearchRequest does the FHIR parsing proper.
 */

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

/** Parameters the REST layer handles itself or passes as SearchRequest fields rather than filters. */
const RESULT_PARAMETERS = new Set([
  '_count',
  '_offset',
  '_sort',
  '_total',
  '_include',
  '_revinclude',
  '_elements',
  '_summary',
  '_format',
  '_pretty',
]);

const MODIFIERS = new Set([
  'exact',
  'contains',
  'missing',
  'not',
  'identifier',
  'text',
  'above',
  'below',
  'in',
  'not-in',
  'of-type',
]);

/** Search parameter types the embedded store indexes (composite and special ones are not). */
const SUPPORTED_TYPES = new Set(['number', 'date', 'string', 'token', 'reference', 'quantity', 'uri']);

export interface SearchPlan {
  request: SearchRequest;
  count: number;
  offset: number;
  /** How to subset the matches (_elements / _summary), if at all. */
  subsetting?: Subsetting;
  /** _summary=count: only the total. */
  countOnly: boolean;
}

/** The search parameters of a type that this server supports, by code. */
export function supportedSearchParameters(type: string): Map<string, SearchParameter> {
  const result = new Map<string, SearchParameter>();
  for (const [code, param] of Object.entries(getSearchParameters(type) ?? {})) {
    if (SUPPORTED_TYPES.has(param.type) && !param.url?.startsWith('https://medplum.com/')) {
      result.set(code, param);
    }
  }
  return result;
}

function nonNegativeInteger(name: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) {
    throw errors.badRequest(`${name} must be a non-negative integer.`, name);
  }
  return Number(value);
}

export function planSearch(type: ResourceType, params: URLSearchParams): SearchPlan {
  const known = supportedSearchParameters(type);
  const query: Record<string, string[]> = {};
  for (const [key, value] of params) {
    if (value === '') {
      continue; // FHIR: a parameter without a value is ignored
    }
    if (!RESULT_PARAMETERS.has(key.split(':')[0])) {
      checkFilterKey(type, key, known);
    }
    if (key !== '_elements' && key !== '_summary' && key !== '_format' && key !== '_pretty') {
      (query[key] ??= []).push(value);
    }
  }

  const single = (name: string): string | undefined => {
    const values = params.getAll(name).filter((v) => v !== '');
    if (values.length > 1) {
      throw errors.badRequest(`${name} may be given only once.`, name);
    }
    return values[0];
  };

  const countParam = single('_count');
  const count =
    countParam === undefined ? DEFAULT_COUNT : Math.min(nonNegativeInteger('_count', countParam), MAX_COUNT);
  const offsetParam = single('_offset');
  const offset = offsetParam === undefined ? 0 : nonNegativeInteger('_offset', offsetParam);

  const total = single('_total');
  if (total !== undefined && !['none', 'estimate', 'accurate'].includes(total)) {
    throw errors.badRequest('_total must be none, estimate or accurate.', '_total');
  }

  for (const sort of (single('_sort') ?? '').split(',').filter(Boolean)) {
    const code = sort.startsWith('-') ? sort.slice(1) : sort;
    if (!known.has(code)) {
      throw errors.badRequest(
        `Cannot sort ${type} by ${code}: it is not a supported search parameter.`,
        '_sort',
      );
    }
  }
  for (const name of ['_include', '_revinclude']) {
    for (const [key, value] of params) {
      if (key.split(':')[0] === name && value !== '') {
        checkInclude(name, key, value);
      }
    }
  }

  const summary = single('_summary');
  const elements = single('_elements');
  if (summary !== undefined && !['true', 'false', 'text', 'data', 'count'].includes(summary)) {
    throw errors.badRequest('_summary must be true, false, text, data or count.', '_summary');
  }
  const countOnly = summary === 'count';
  const subsetting: Subsetting | undefined =
    elements !== undefined
      ? { elements: parseElements(type, elements) }
      : summary === 'true' || summary === 'text' || summary === 'data'
        ? { summary }
        : undefined;

  let request: SearchRequest;
  try {
    request = parseSearchRequest(type, query);
  } catch (err) {
    throw errors.badRequest(`The search could not be parsed: ${(err as Error).message}`);
  }
  request = { ...request, count: countOnly ? 0 : count, offset, fields: undefined, summary: undefined };
  if (countOnly) {
    request.total = 'accurate';
  }
  return { request, count, offset, subsetting, countOnly };
}

/** A filter key: `code`, `code:modifier`, `code:Type.chained` or `code.chained`. */
function checkFilterKey(type: string, key: string, known: Map<string, SearchParameter>): void {
  const match = /^([A-Za-z_][A-Za-z0-9_-]*)(?::([A-Za-z-]+))?(?:\.(.+))?$/.exec(key);
  const code = match?.[1];
  if (!match || code === undefined) {
    throw errors.badRequest(`Search parameter '${key}' is malformed.`, key);
  }
  const param = known.get(code);
  if (!param) {
    throw errors.badRequest(`Unknown or unsupported search parameter '${code}' for ${type}.`, code);
  }
  const modifier = match[2];
  const chain = match[3];
  if (modifier !== undefined && !MODIFIERS.has(modifier) && !isResourceType(modifier)) {
    throw errors.badRequest(`Unknown search modifier ':${modifier}' on '${code}'.`, key);
  }
  if (modifier !== undefined && isResourceType(modifier) && param.type !== 'reference') {
    throw errors.badRequest(`The type modifier ':${modifier}' applies to reference parameters only.`, key);
  }
  if (chain !== undefined) {
    if (param.type !== 'reference') {
      throw errors.badRequest(`Only reference parameters can be chained; '${code}' is a ${param.type}.`, key);
    }
    const targets = modifier && isResourceType(modifier) ? [modifier] : (param.target ?? []);
    const chained = chain.split(/[.:]/)[0];
    if (!targets.some((target) => supportedSearchParameters(target).has(chained))) {
      throw errors.badRequest(
        `Cannot chain '${code}' to '${chained}': no target type has that parameter.`,
        key,
      );
    }
  }
}

/** `_include=Source:param[:Target]` (and `_include:iterate`); `*` is left to the store. */
function checkInclude(name: string, key: string, value: string): void {
  const suffix = key.slice(name.length);
  if (suffix !== '' && suffix !== ':iterate') {
    throw errors.badRequest(`Unknown modifier on ${name}: ${suffix}.`, key);
  }
  if (value === '*') {
    return;
  }
  const [source, code, target, ...rest] = value.split(':');
  const param =
    source !== undefined && isResourceType(source)
      ? supportedSearchParameters(source).get(code ?? '')
      : undefined;
  if (
    !param ||
    param.type !== 'reference' ||
    rest.length > 0 ||
    (target !== undefined && !isResourceType(target))
  ) {
    throw errors.badRequest(
      `${name}=${value} is not of the form SourceType:referenceParameter[:TargetType].`,
      name,
    );
  }
}

/** The URL of a page of this search: the same parameters with another `_offset`. */
export function pageUrl(base: string, type: string, params: URLSearchParams, offset: number): string {
  const next = new URLSearchParams();
  for (const [key, value] of params) {
    if (key !== '_offset') {
      next.append(key, value);
    }
  }
  if (offset > 0) {
    next.set('_offset', String(offset));
  }
  const query = next.toString();
  return `${base}/${type}${query ? `?${query}` : ''}`;
}
