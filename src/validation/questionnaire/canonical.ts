/** A canonical reference as FHIR writes it: `url` or `url|version`. */
export interface Canonical {
  url: string;
  version?: string;
}

export function parseCanonical(value: string): Canonical {
  const bar = value.indexOf('|');
  if (bar < 0) {
    return { url: value };
  }
  const version = value.slice(bar + 1);
  return version ? { url: value.slice(0, bar), version } : { url: value.slice(0, bar) };
}

export function formatCanonical(canonical: Canonical): string {
  return canonical.version ? `${canonical.url}|${canonical.version}` : canonical.url;
}

/**
 * Orders business versions so that "latest" means what a person expects: dotted numeric parts compare
 * as numbers (1.10.0 after 1.9.0), anything else as text.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined || y === undefined) {
      return x === undefined ? -1 : 1;
    }
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const diff = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (diff !== 0) {
      return diff;
    }
  }
  return 0;
}
