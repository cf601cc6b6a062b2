import { literalKeyOf } from '../../fhir/reference';

/**
 * Finding references inside a resource, the way erasure needs them: every Reference.reference anywhere
 * (nested items, extensions, answers), canonical as the door left it (src/ingest/references.ts), any
 * version reduced to "Type/id".
 */



/** Every "Type/id" that the value refers to, at any depth. */
export function referencesIn(value: unknown, into: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) {
      referencesIn(item, into);
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'reference' && typeof child === 'string') {
        const target = literalKeyOf(child);
        if (target !== undefined) {
          into.add(target);
        }
      } else if (typeof child === 'object') {
        referencesIn(child, into);
      }
    }
  }
  return into;
}
