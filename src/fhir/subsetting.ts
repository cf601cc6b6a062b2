import { getDataType } from '@medplum/core';
import type { Coding, Resource } from '@medplum/fhirtypes';
import { errors } from './outcomes';

/**
 * `_elements` and `_summary` (true, text, data): return part of each resource, keeping what FHIR says a
 * subset must keep (resourceType, id, meta, mandatory top-level elements) and tagging it SUBSETTED so
 * that nobody mistakes it for the whole resource.
 */

export type Subsetting = { elements: string[] } | { summary: 'true' | 'text' | 'data' };

const SUBSETTED: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'subsetted',
};

/** Checks `_elements` against the type's top-level elements (a choice element by base name or typed name). */
export function parseElements(type: string, value: string): string[] {
  const schema = getDataType(type);
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean)
    .map((name) => (name.startsWith(`${type}.`) ? name.slice(type.length + 1) : name));
  for (const name of names) {
    if (!matchingElement(schema.elements, name)) {
      throw errors.badRequest(`_elements: ${type} has no element '${name}'.`, '_elements');
    }
  }
  return names;
}

function matchingElement(elements: Record<string, unknown>, property: string): string | undefined {
  if (property in elements) {
    return property;
  }
  return Object.keys(elements).find(
    (key) => key.endsWith('[x]') && (property === key.slice(0, -3) || property.startsWith(key.slice(0, -3))),
  );
}

export function subsetResource<T extends Resource>(resource: T, subsetting: Subsetting): T {
  const schema = getDataType(resource.resourceType);
  const mandatory = schema.mandatoryProperties ?? new Set<string>();
  const keep = (property: string): boolean => {
    if (property === 'resourceType' || property === 'id' || property === 'meta') {
      return true;
    }
    const element = matchingElement(schema.elements, property);
    if (element !== undefined && mandatory.has(element)) {
      return true;
    }
    if ('elements' in subsetting) {
      return subsetting.elements.some(
        (name) =>
          name === property || (element !== undefined && matchingElement(schema.elements, name) === element),
      );
    }
    switch (subsetting.summary) {
      case 'true':
        return element !== undefined && (schema.summaryProperties?.has(element) ?? false);
      case 'text':
        return property === 'text';
      case 'data':
        return property !== 'text';
    }
  };
  const result: Record<string, unknown> = {};
  for (const [property, value] of Object.entries(resource)) {
    if (keep(property)) {
      result[property] = value;
    }
  }
  const meta = resource.meta ?? {};
  result.meta = { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] };
  return result as T;
}
