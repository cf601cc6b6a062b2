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

/**
 * A location, full URL or paging link made relative to the base ("Patient/1/_history/1"). HAPI writes
 * them with its own address, which is not the one this server reaches it by when a proxy or another host
 * name is between them, so only the base's path is matched.
 */
export function relativeTo(base: string, url: string | undefined): string | undefined {
  if (url === undefined || !URL.canParse(url)) {
    return url;
  }
  const parsed = new URL(url);
  const basePath = new URL(base).pathname.replace(/\/+$/, '');
  return parsed.pathname.startsWith(`${basePath}/`)
    ? `${parsed.pathname.slice(basePath.length + 1)}${parsed.search}`
    : url;
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
