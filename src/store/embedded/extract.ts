import {
  evalFhirPathTyped,
  getSearchParameterDetails,
  getSearchParameters,
  toTypedValue,
  type FhirPathAtom,
  type TypedValue,
} from '@medplum/core';
import type { Resource, SearchParameter } from '@medplum/fhirtypes';
import { parseReference } from '../../fhir/reference';
import { normaliseForSearch } from './normalise';
import { dateRange, periodRange, type Range } from './ranges';

/**
 * Turns a resource into index rows: for every search parameter @medplum/core's registry defines for the
 * type, evaluate its FHIRPath expression and convert what comes out by the parameter's type.
 * `_id` and `_lastUpdated` live on the resource row itself; composite and special parameters are not
 * indexed (searching by them is a 400).
 */

export type IndexedType = 'token' | 'string' | 'reference' | 'date' | 'number' | 'quantity' | 'uri';

export interface IndexedParameter {
  code: string;
  type: IndexedType;
  definition: SearchParameter;
  expression: FhirPathAtom;
  /** Whether a resource can hold several values of it (from the element definitions). */
  array: boolean;
}

export interface IndexRows {
  token: { param: string; system: string | null; code: string | null }[];
  string: { param: string; norm: string; raw: string }[];
  reference: {
    param: string;
    targetType: string | null;
    targetId: string | null;
    ref: string | null;
    idSystem: string | null;
    idValue: string | null;
  }[];
  date: { param: string; lo: number; hi: number }[];
  number: { param: string; value: number }[];
  quantity: {
    param: string;
    value: number;
    system: string | null;
    code: string | null;
    unit: string | null;
  }[];
  uri: { param: string; uri: string }[];
}

const INDEXED_TYPES = new Set<string>(['token', 'string', 'reference', 'date', 'number', 'quantity', 'uri']);
const ON_RESOURCE_ROW = new Set(['_id', '_lastUpdated']);
const cache = new Map<string, IndexedParameter[]>();

/** The parameters the store indexes for a resource type (cached; the registry must be loaded). */
export function indexedParameters(resourceType: string): IndexedParameter[] {
  let list = cache.get(resourceType);
  if (!list) {
    list = [];
    for (const [code, definition] of Object.entries(getSearchParameters(resourceType) ?? {})) {
      if (ON_RESOURCE_ROW.has(code) || !INDEXED_TYPES.has(definition.type) || !definition.expression) {
        continue;
      }
      const details = getSearchParameterDetails(resourceType, definition);
      list.push({
        code,
        type: definition.type as IndexedType,
        definition,
        expression: details.parsedExpression,
        array: details.array !== false,
      });
    }
    cache.set(resourceType, list);
  }
  return list;
}

export function extractIndexRows(resource: Resource): IndexRows {
  const rows: IndexRows = {
    token: [],
    string: [],
    reference: [],
    date: [],
    number: [],
    quantity: [],
    uri: [],
  };
  const input = [toTypedValue(resource)];
  for (const param of indexedParameters(resource.resourceType)) {
    let values: TypedValue[];
    try {
      values = evalFhirPathTyped(param.expression, input);
    } catch {
      // A definition whose expression the engine cannot evaluate for this resource indexes nothing.
      continue;
    }
    for (const value of values) {
      addValue(rows, param, value);
    }
  }
  return rows;
}

type Obj = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

function addValue(rows: IndexRows, param: IndexedParameter, tv: TypedValue): void {
  const v = tv.value as unknown;
  if (v === undefined || v === null) {
    return;
  }
  const code = param.code;
  switch (param.type) {
    case 'token':
      for (const t of tokens(tv.type, v)) {
        rows.token.push({ param: code, ...t });
      }
      return;
    case 'string':
      for (const s of strings(tv.type, v)) {
        rows.string.push({ param: code, norm: normaliseForSearch(s), raw: s });
      }
      return;
    case 'reference':
      rows.reference.push(...references(code, tv.type, v));
      return;
    case 'date': {
      const range = dates(tv.type, v);
      if (range) {
        rows.date.push({ param: code, ...range });
      }
      return;
    }
    case 'number':
      if (typeof v === 'number') {
        rows.number.push({ param: code, value: v });
      } else if (typeof v === 'object' && typeof (v as Obj).value === 'number') {
        rows.number.push({ param: code, value: (v as Obj).value as number });
      }
      return;
    case 'quantity':
      if (typeof v === 'object' && typeof (v as Obj).value === 'number') {
        const q = v as Obj;
        rows.quantity.push({
          param: code,
          value: q.value as number,
          system: str(q.system),
          code: str(q.code),
          unit: str(q.unit),
        });
      } else if (typeof v === 'number') {
        rows.quantity.push({ param: code, value: v, system: null, code: null, unit: null });
      }
      return;
    case 'uri':
      if (typeof v === 'string') {
        rows.uri.push({ param: code, uri: v });
      }
      return;
  }
}

function tokens(type: string, v: unknown): { system: string | null; code: string | null }[] {
  if (typeof v === 'boolean' || typeof v === 'number') {
    return [{ system: null, code: String(v) }];
  }
  if (typeof v === 'string') {
    return [{ system: null, code: v }];
  }
  if (typeof v !== 'object') {
    return [];
  }
  const o = v as Obj;
  if (type === 'CodeableConcept' || Array.isArray(o.coding)) {
    return ((o.coding as Obj[] | undefined) ?? []).map((c) => ({ system: str(c.system), code: str(c.code) }));
  }
  if (type === 'Identifier') {
    return [{ system: str(o.system), code: str(o.value) }];
  }
  if (type === 'ContactPoint') {
    return [{ system: str(o.system), code: str(o.value) }];
  }
  if (type === 'Coding' || 'code' in o) {
    return [{ system: str(o.system), code: str(o.code) }];
  }
  if ('value' in o) {
    return [{ system: str(o.system), code: str(o.value) }];
  }
  return [];
}

function strings(type: string, v: unknown): string[] {
  if (typeof v === 'string') {
    return [v];
  }
  if (typeof v !== 'object') {
    return [];
  }
  const o = v as Obj;
  const out: string[] = [];
  const push = (x: unknown): void => {
    if (typeof x === 'string' && x.trim() !== '') {
      out.push(x);
    } else if (Array.isArray(x)) {
      x.forEach(push);
    }
  };
  if (type === 'HumanName') {
    push(o.family);
    push(o.given);
    push(o.prefix);
    push(o.suffix);
    push(o.text);
  } else if (type === 'Address') {
    push(o.line);
    push(o.city);
    push(o.district);
    push(o.state);
    push(o.postalCode);
    push(o.country);
    push(o.text);
  } else {
    push(o.text);
    push(o.display);
    push(o.value);
  }
  return out;
}

function references(param: string, type: string, v: unknown): IndexRows['reference'] {
  const rows: IndexRows['reference'] = [];
  const empty = { targetType: null, targetId: null, ref: null, idSystem: null, idValue: null };
  if (typeof v === 'string') {
    // canonical or uri: indexed whole, and without its |version so an unversioned search finds it.
    rows.push({ param, ...empty, ref: v });
    const bar = v.indexOf('|');
    if (bar > 0) {
      rows.push({ param, ...empty, ref: v.slice(0, bar) });
    }
    return rows;
  }
  if (typeof v !== 'object' || type === 'Identifier') {
    return rows;
  }
  const o = v as Obj;
  const reference = str(o.reference);
  if (reference && !reference.startsWith('#')) {
    // Stored references are canonical (src/ingest/references.ts); Type/id/_history/v indexes as Type/id.
    const parsed = parseReference(reference);
    const target = parsed.ok && parsed.reference.kind === 'literal' ? parsed.reference : undefined;
    rows.push({
      param,
      ...empty,
      targetType: target?.resourceType ?? null,
      targetId: target?.id ?? null,
      ref: reference,
    });
  }
  const identifier = o.identifier as Obj | undefined;
  if (identifier && str(identifier.value)) {
    rows.push({ param, ...empty, idSystem: str(identifier.system), idValue: str(identifier.value) });
  }
  return rows;
}

function dates(type: string, v: unknown): Range | undefined {
  if (typeof v === 'string') {
    return dateRange(v);
  }
  if (typeof v !== 'object') {
    return undefined;
  }
  const o = v as Obj;
  if (type === 'Period' || 'start' in o || 'end' in o) {
    return periodRange(o as { start?: string; end?: string });
  }
  if (type === 'Timing' && Array.isArray(o.event)) {
    const ranges = (o.event as string[]).map(dateRange).filter((r): r is Range => r !== undefined);
    if (ranges.length > 0) {
      return { lo: Math.min(...ranges.map((r) => r.lo)), hi: Math.max(...ranges.map((r) => r.hi)) };
    }
  }
  return undefined;
}
