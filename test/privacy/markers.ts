import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';

/**
 * Markers for the privacy fuzzer: synthetic direct identifiers that can be found again as bytes, each
 * minted once and remembered with where it was put, so a marker found in a file, a log line or a response
 * names the request and the element it came from.
 */
export type MarkerKind = 'national-id' | 'name' | 'phone' | 'address';

export interface Origin {
  write: number;
  site: string;
}

export interface Marker {
  kind: MarkerKind;
  /** The text as placed in free text. */
  text: string;
  /** What is searched for: the national id, the phone number, or the one word of a name or street. */
  needle: string;
  /** Which write (its number in the report) and which element it was put in. */
  origin: Origin;
}

/** A rare prefix: no FHIR definition, code system or server text contains it. */
const WORD_PREFIX = 'Mrkq';

/** Index → letters, so every word marker is distinct and has no digits. */
function letters(i: number): string {
  let out = '';
  let n = i + 26 * 26 * 26;
  while (n > 0) {
    out = String.fromCharCode(97 + (n % 26)) + out;
    n = Math.floor(n / 26);
  }
  return out;
}

export class MarkerMint {
  private readonly random: () => number;
  private readonly nationalIds = new Set<string>();
  private count = 0;
  readonly minted: Marker[] = [];

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  nationalId(origin: Origin, kind: 'fnr' | 'dnr' = 'fnr'): Marker {
    for (;;) {
      const id = syntheticNationalId(kind, { random: this.random });
      if (!this.nationalIds.has(id)) {
        this.nationalIds.add(id);
        return this.remember({ kind: 'national-id', text: id, needle: id, origin });
      }
    }
  }

  mint(kind: MarkerKind, origin: Origin): Marker {
    if (kind === 'national-id') {
      return this.nationalId(origin);
    }
    const n = this.count++;
    switch (kind) {
      case 'name': {
        const word = `${WORD_PREFIX}navn${letters(n)}`;
        return this.remember({ kind, text: `Kari ${word}`, needle: word, origin });
      }
      case 'address': {
        const word = `${WORD_PREFIX}vei${letters(n)}`;
        return this.remember({ kind, text: `${word} ${1 + (n % 90)}`, needle: word, origin });
      }
      case 'phone': {
        // 9xx xx xxx: a Norwegian mobile number; distinct per marker.
        const digits = String(90000000 + ((n * 7919) % 10000000));
        return this.remember({ kind, text: digits, needle: digits, origin });
      }
    }
  }

  private remember(marker: Marker): Marker {
    this.minted.push(marker);
    return marker;
  }
}

/** Where a marker was found: `file`, `log` or a response, with the marker. */
export interface Hit {
  marker: Marker;
  where: string;
}

/**
 * Finds markers in bytes, in one pass (one regular expression of every needle). National ids and words
 * are found anywhere, also glued to other text and in any case (search indexes normalise case). A phone
 * number is found only where it is not part of a longer run of hex digits: runs of eight digits occur by
 * chance in hashes and UUIDs.
 */
export function findMarkers(bytes: Buffer, markers: readonly Marker[], where: string): Hit[] {
  if (!markers.length) return [];
  const byNeedle = new Map<string, Marker[]>();
  for (const marker of markers) {
    const key = marker.needle.toLowerCase();
    byNeedle.set(key, [...(byNeedle.get(key) ?? []), marker]);
  }
  const pattern = new RegExp(
    [...byNeedle.keys()].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'),
    'gi',
  );
  const text = bytes.toString('latin1');
  const found = new Set<Marker>();
  for (const match of text.matchAll(pattern)) {
    for (const marker of byNeedle.get(match[0].toLowerCase()) ?? []) {
      if (marker.kind !== 'phone' || standsAlone(text, match.index, match[0].length)) found.add(marker);
    }
  }
  return [...found].map((marker) => ({ marker, where }));
}

const HEX = /[0-9A-Fa-f]/;

function standsAlone(text: string, at: number, length: number): boolean {
  return !HEX.test(text.charAt(at - 1)) && !HEX.test(text.charAt(at + length));
}
