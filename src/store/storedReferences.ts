import { literalKey, parseReference, referenceSites } from '../fhir/reference';

/** A resource another resource refers to, as `Type` and `id` (any `_history` version dropped). */
export interface ReferenceTarget {
  targetType: string;
  targetId: string;
}

/**
 * Every resource a stored resource refers to through a literal reference, wherever the Reference stands:
 * any element, extensions, nested items and answers, and the resource's contained resources (so a
 * resource that refers to a person only through a contained resource is found too). Search parameters
 * play no part: erasure must find references no search parameter covers (DESIGN §3.2).
 *
 * References are read by THE parser (src/fhir/reference.ts). The stores hold only canonical references;
 * one that does not parse (written before the parser existed) is not a target here, and the independent
 * text scan after an erasure is what reports such a leftover.
 */
export function storedReferences(resource: object): ReferenceTarget[] {
  const targets = new Map<string, ReferenceTarget>();
  for (const site of referenceSites(resource, 'Resource')) {
    const parsed = parseReference(site.node.reference as string);
    if (parsed.ok && parsed.reference.kind === 'literal') {
      const { resourceType, id } = parsed.reference;
      targets.set(literalKey({ resourceType, id }), { targetType: resourceType, targetId: id });
    }
  }
  return [...targets.values()];
}
