import type { Identifier } from '@medplum/fhirtypes';
import {
  computeK2,
  hnrTypeCode,
  hnrTypeSystem,
  k1WithOffset,
  type NationalIdKind,
  preferredSystem,
} from './nationalId';

/**
 * Valid synthetic national ids for tests, benchmarks and demos. Date-based kinds always carry the
 * Test-Norge/Tenor marker (month + 80), so no generated number can belong to a real person. Felles
 * hjelpenummer and old-style H-numbers have no marker; they are random numbers with valid check digits.
 */
export interface SyntheticOptions {
  /** Deterministic output for a given seed (default: Math.random). */
  random?: () => number;
  /** Use one of the 2032-rule K1 values (remainder offset 1–3) instead of the classic one. */
  rule2032?: boolean;
}

/** A small seeded PRNG (mulberry32) so fixtures are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Appends K1 and K2 to nine digits, or returns undefined when no valid number has these nine digits. */
export function withCheckDigits(
  nine: string,
  rule2032 = false,
  random: () => number = Math.random,
): string | undefined {
  const digits = [...nine].map(Number);
  // Offset 0 is the classic K1; offsets 1–3 are the values only valid from 2032.
  const offsets = rule2032 ? [1, 2, 3] : [0];
  const candidates = offsets.map((o) => k1WithOffset(digits, o)).filter((k) => k !== 10);
  if (candidates.length === 0) {
    return undefined;
  }
  const k1 = candidates[Math.floor(random() * candidates.length)];
  const k2 = computeK2([...digits, k1]);
  return k2 === undefined ? undefined : `${nine}${k1}${k2}`;
}

function randomDatePart(random: () => number, dayOffset: number, monthOffset: number): string {
  const month = 1 + Math.floor(random() * 12);
  const day = 1 + Math.floor(random() * 28);
  const year = Math.floor(random() * 100);
  return pad2(day + dayOffset) + pad2(month + monthOffset) + pad2(year);
}

/** A valid synthetic number of the kind. H-numbers get month + 40 (they cannot also carry + 80). */
export function syntheticNationalId(kind: NationalIdKind = 'fnr', options: SyntheticOptions = {}): string {
  const random = options.random ?? Math.random;
  for (;;) {
    let nine: string;
    switch (kind) {
      case 'fnr':
        nine = randomDatePart(random, 0, 80);
        break;
      case 'dnr':
        nine = randomDatePart(random, 40, 80);
        break;
      case 'hnr':
        nine = randomDatePart(random, 0, 40);
        break;
      case 'fhn':
        nine = String(8 + Math.floor(random() * 2)) + String(Math.floor(random() * 1e5)).padStart(5, '0');
        break;
    }
    nine += String(Math.floor(random() * 1000)).padStart(3, '0');
    const full = withCheckDigits(nine, options.rule2032 ?? false, random);
    if (full) {
      return full;
    }
  }
}

/** A FHIR Identifier carrying a synthetic number of the kind (H-numbers with an assigner). */
export function syntheticIdentifier(
  kind: NationalIdKind = 'fnr',
  options: SyntheticOptions = {},
): Identifier {
  const value = syntheticNationalId(kind, options);
  if (kind === 'hnr') {
    return {
      type: { coding: [{ system: hnrTypeSystem, code: hnrTypeCode }] },
      system: 'urn:oid:2.16.578.1.12.4.1.2.99999',
      value,
      assigner: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '4001031' } },
    };
  }
  return { system: preferredSystem[kind], value };
}
