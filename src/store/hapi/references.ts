/**
 * Finding references inside a resource, the way erasure needs them: every Reference.reference anywhere
 * (nested items, extensions, answers), written relative, absolute or version-specific, reduced to "Type/id".
 */

const RELATIVE = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

/** "Type/id" for a literal reference; undefined for contained (#x), urn: and unparsable ones. */
export function referenceKey(reference: string): string | undefined {
  if (reference.startsWith('#') || reference.startsWith('urn:')) {
    return undefined;
  }
  const match = RELATIVE.exec(reference.split('?')[0]);
  return match ? `${match[1]}/${match[2]}` : undefined;
}

/** Every "Type/id" that the value refers to, at any depth. */
export function referencesIn(value: unknown, into: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) {
      referencesIn(item, into);
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'reference' && typeof child === 'string') {
        const target = referenceKey(child);
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
