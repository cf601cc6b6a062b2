import { tryGetDataType, type InternalTypeSchema } from '@medplum/core';
import { errors } from './outcomes';
import { isResourceType } from './resourceTypes';

/**
 * The structural check of a JSON request body, done once at the door (src/fhir/http.ts readJsonBody)
 * before anything walks the JSON: validation, pseudonymisation, the reservation and $correct handlers
 * all read elements by their FHIR shape, and a value of the wrong shape (an object where FHIR has an
 * array, `null` for a resource, a string for a complex type) must be a 400 here rather than a
 * TypeError deep inside one of them.
 *
 * - Nesting is limited (MAX_DEPTH) on the raw text, before JSON.parse and before any recursive walk.
 * - Keys named like Object.prototype members (`constructor`, `toString`, `__proto__`, …) are refused
 *   anywhere: no FHIR element has such a name, and code indexing objects by element name would find
 *   the inherited function instead of data.
 * - Inside a resource (an object with a known `resourceType`), every known element has its FHIR shape:
 *   repeating elements are arrays, complex types and resources are objects, primitives are not objects.
 *   Whether a primitive's value is valid (a date, a code) is left to validation, which says so as 422.
 */

/** Deepest nesting of objects and arrays a body may have; FHIR resources need well under 30. */
const MAX_DEPTH = 64;

/** 400 when the JSON text nests deeper than MAX_DEPTH; linear, and never recursive. */
export function checkNesting(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > MAX_DEPTH) {
        throw errors.badRequest(
          `The request body is nested more than ${MAX_DEPTH} levels deep, the limit of this server.`,
        );
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
}

/**
 * 400 naming the first prototype-named key or element of the wrong shape in a parsed body. With
 * `skipEntries` (a batch or transaction posted to the base), Bundle.entry is left to checkEntryShape,
 * entry by entry, so that a batch can answer a malformed entry alone.
 */
export function checkShape(body: unknown, options: { skipEntries?: boolean } = {}): void {
  if (options.skipEntries && isObject(body) && body.resourceType === 'Bundle') {
    const { entry, ...rest } = body;
    walk(rest, 'Resource', 'Bundle');
    if (entry !== undefined && !Array.isArray(entry)) {
      throw errors.badRequest('Bundle.entry repeats: it must be an array.', 'Bundle.entry');
    }
    return;
  }
  walk(body, isResource(body) ? 'Resource' : undefined, isResource(body) ? body.resourceType : '$');
}

/** checkShape for one Bundle.entry of a batch or transaction. */
export function checkEntryShape(entry: unknown, path: string): void {
  if (!isObject(entry)) {
    throw errors.badRequest(`${path} must be an object (BundleEntry).`, path);
  }
  walk(entry, 'BundleEntry', path);
}

const PROTOTYPE_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));

interface ElementShape {
  isArray: boolean;
  /** A FHIR type name (complex, resource or 'Resource'), or undefined for a primitive. */
  type: string | undefined;
}

type Shapes = Map<string, ElementShape>;

const shapeCache = new Map<string, Shapes | undefined>();

/** JSON key → shape of the element of a complex type or resource, choice types expanded. */
function shapesOf(typeName: string): Shapes | undefined {
  if (shapeCache.has(typeName)) {
    return shapeCache.get(typeName);
  }
  const schema: InternalTypeSchema | undefined = tryGetDataType(typeName);
  let shapes: Shapes | undefined;
  if (schema) {
    shapes = new Map();
    for (const [name, element] of Object.entries(schema.elements)) {
      const isArray = element.isArray === true || element.max > 1;
      for (const { code } of element.type) {
        const key = name.endsWith('[x]') ? name.slice(0, -3) + code[0].toUpperCase() + code.slice(1) : name;
        shapes.set(key, { isArray, type: isPrimitive(code) ? undefined : code });
      }
    }
  }
  shapeCache.set(typeName, shapes);
  return shapes;
}

function isPrimitive(code: string): boolean {
  return /^[a-z]/.test(code) || code.startsWith('http://hl7.org/fhirpath/');
}

function isResource(value: unknown): value is { resourceType: string } {
  if (!isObject(value)) return false;
  const type = (value as { resourceType?: unknown }).resourceType;
  return typeof type === 'string' && isResourceType(type);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `type`: the FHIR type `value` must have ('Resource' for any resource), or undefined outside FHIR. */
function walk(value: unknown, type: string | undefined, path: string): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => walk(item, type, `${path}[${index}]`));
    return;
  }
  if (!isObject(value)) {
    return;
  }
  if (type === 'Resource' || (type !== undefined && isResource(value))) {
    if (!isResource(value)) {
      throw errors.badRequest(`${path} must be a resource with a known resourceType.`, path);
    }
    type = value.resourceType;
  }
  const shapes = type === undefined ? undefined : shapesOf(type);
  for (const [key, child] of Object.entries(value)) {
    const at = `${path}.${key}`;
    if (PROTOTYPE_KEYS.has(key)) {
      throw errors.badRequest(`'${key}' is not an element of any FHIR resource.`, at);
    }
    const shape = shapes?.get(key);
    if (shape === undefined) {
      walk(child, undefined, at); // unknown elements are validation's to name; only keys checked here
      continue;
    }
    if (child === null) {
      throw errors.badRequest(`${at} is null; leave an absent element out.`, at);
    }
    if (shape.isArray !== Array.isArray(child)) {
      throw errors.badRequest(
        shape.isArray
          ? `${at} repeats: it must be an array.`
          : `${at} does not repeat: it must not be an array.`,
        at,
      );
    }
    for (const [index, item] of (Array.isArray(child) ? child : [child]).entries()) {
      const itemAt = Array.isArray(child) ? `${at}[${index}]` : at;
      if (shape.type === undefined ? typeof item === 'object' : !isObject(item)) {
        throw errors.badRequest(
          shape.type === undefined
            ? `${itemAt} is a primitive value, not ${item === null ? 'null' : 'an object or array'}.`
            : `${itemAt} must be an object (${shape.type}).`,
          itemAt,
        );
      }
      if (shape.type !== undefined) {
        walk(item, shape.type, itemAt);
      }
    }
  }
}
