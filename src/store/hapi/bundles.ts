import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';

/** Reading HAPI's Bundles: paging links, offsets and the small clean-ups the store contract expects. */

/** The `_offset` of the Bundle's next link, or undefined when there is no next page. */
export function nextOffset(bundle: Bundle, fallback: number): number | undefined {
  const next = bundle.link?.find((l: BundleLink) => l.relation === 'next')?.url;
  if (next === undefined) {
    return undefined;
  }
  const offset = new URL(next).searchParams.get('_offset');
  return offset !== null && /^\d+$/.test(offset) ? Number(offset) : fallback;
}

/**
 * HAPI records the request id as meta.source ("#abc123"): an artefact of HAPI, not of the resource, which
 * the embedded store does not have. A real source URI is kept.
 */
export function withoutRequestSource<T extends Resource>(resource: T): T {
  const source = resource.meta?.source;
  if (source === undefined || !source.startsWith('#')) {
    return resource;
  }
  const { source: _dropped, ...meta } = resource.meta ?? {};
  void _dropped;
  return { ...resource, meta } as T;
}

/** A location or full URL made relative to the base ("Patient/1/_history/1"). */
export function relativeTo(base: string, url: string | undefined): string | undefined {
  if (url === undefined) {
    return undefined;
  }
  return url.startsWith(`${base}/`) ? url.slice(base.length + 1) : url;
}

/** Clean each entry of a transaction or history Bundle. */
export function cleanEntries(base: string, entries: BundleEntry[] | undefined): BundleEntry[] {
  return (entries ?? []).map((entry) => {
    const cleaned: BundleEntry = { ...entry };
    if (cleaned.resource) {
      cleaned.resource = withoutRequestSource(cleaned.resource);
    }
    if (cleaned.response) {
      const { location, etag } = cleaned.response;
      cleaned.response = {
        ...cleaned.response,
        ...(location ? { location: relativeTo(base, location) } : {}),
        // HAPI writes a bare version ("2") in transaction responses; FHIR's ETag form is W/"2".
        ...(etag && /^\d+$/.test(etag) ? { etag: `W/"${etag}"` } : {}),
      };
    }
    return cleaned;
  });
}
