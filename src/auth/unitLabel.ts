import { Operator, type Filter } from '@medplum/core';
import type { Coding, Resource } from '@medplum/fhirtypes';

/**
 * The unit label: which participating unit(s) a stored resource belongs to, as `meta.security` codings
 * with the units' RESH ids. The write path sets it (src/ingest/authorise.ts) after pseudonymisation —
 * a clinic's writes carry its own unit, a Patient carries every unit that has sent the person — and
 * strips whatever a client sent in this system, so a label cannot be forged. Clinics see what carries
 * their label (src/auth/view.ts); searching by `_security` makes that a filter in the store itself.
 */
export const UNIT_LABEL_SYSTEM = 'https://norpain.no/fhir/CodeSystem/unit';

export function unitsOf(resource: Resource | undefined): string[] {
  return (resource?.meta?.security ?? [])
    .filter((c) => c.system === UNIT_LABEL_SYSTEM && c.code !== undefined)
    .map((c) => c.code as string);
}

/** The resource without unit labels (as a client sent it, or before relabelling). */
export function withoutUnitLabels<T extends Resource>(resource: T): T {
  const security = resource.meta?.security;
  if (security === undefined || !security.some((c) => c.system === UNIT_LABEL_SYSTEM)) {
    return resource;
  }
  const rest = security.filter((c) => c.system !== UNIT_LABEL_SYSTEM);
  const meta = { ...resource.meta };
  if (rest.length > 0) {
    meta.security = rest;
  } else {
    delete meta.security;
  }
  return { ...resource, meta };
}

/** The resource labelled with exactly these units (sorted, so equal sets give equal resources). */
export function withUnitLabels<T extends Resource>(resource: T, units: Iterable<string>): T {
  const clean = withoutUnitLabels(resource);
  const codes = [...new Set(units)].sort();
  if (codes.length === 0) {
    return clean;
  }
  const labels: Coding[] = codes.map((code) => ({ system: UNIT_LABEL_SYSTEM, code }));
  return { ...clean, meta: { ...clean.meta, security: [...(clean.meta?.security ?? []), ...labels] } };
}

/** The store filter that restricts a search to the resources of any of these units. */
export function unitsFilter(units: readonly string[]): Filter {
  return {
    code: '_security',
    operator: Operator.EQUALS,
    value: units.map((resh) => `${UNIT_LABEL_SYSTEM}|${resh}`).join(','),
  };
}
