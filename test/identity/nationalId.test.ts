import type { Identifier } from '@medplum/fhirtypes';
import {
  extractNationalIds,
  nationalIdKindOf,
  type NationalIdKind,
  type NationalIdProblem,
  parseNationalIdValue,
  validK1,
} from '../../src/identity/nationalId';
import { seededRandom, syntheticIdentifier, syntheticNationalId } from '../../src/identity/synthetic';
import { FhirError } from '../../src/fhir/outcomes';

const dev = { production: false };
const prod = { production: true };
const ASSIGNER = 'urn:oid:2.16.578.1.12.4.1.4.102|4001031';

// Every number here is synthetic (month + 80), a local H-number (month + 40) or a random FH-number.
const valid: [NationalIdKind, string, string][] = [
  ['fnr', '11835066691', 'synthetic FNR'],
  ['fnr', '02826809615', 'synthetic FNR'],
  ['fnr', '10915596784', 'Tenor example from the reference'],
  ['fnr', '16858399649', 'Tenor example from the reference'],
  ['fnr', '29820400184', '29 February in a year that can be a leap year'],
  ['fnr', '23841058836', '2032 rule: K1 with remainder offset 1'],
  ['fnr', '11925729444', '2032 rule: K1 with remainder offset 3'],
  ['fnr', '01825501408', '2032 rule: the classic K1 would be 10, offset 1 gives a number'],
  ['dnr', '57840408819', 'synthetic D-number (D+T)'],
  ['dnr', '43895406024', 'synthetic D-number (D+T)'],
  ['dnr', '62829757139', 'synthetic D-number, 2032 rule offset 2'],
  ['hnr', '08518059638', 'local H-number (month + 40)'],
  ['hnr', '45491558486', 'D+H combination'],
  ['fhn', '86506606111', 'felles hjelpenummer starting with 8'],
  ['fhn', '96102779557', 'felles hjelpenummer starting with 9'],
];

const invalid: [NationalIdKind, string, NationalIdProblem, string][] = [
  ['fnr', '1183506669', 'not-11-digits', 'ten digits'],
  ['fnr', '118350666910', 'not-11-digits', 'twelve digits'],
  ['fnr', '1183506669a', 'not-11-digits', 'a letter'],
  ['fnr', '11835066692', 'check-digits', 'K2 off by one'],
  ['fnr', '11835066681', 'check-digits', 'K1 changed'],
  ['fnr', '13057444850', 'check-digits', 'the no-basis FSH example value'],
  ['fnr', '29820300082', 'date', '29 February in a year that is never a leap year'],
  ['fnr', '31847700001', 'date', '31 April'],
  ['fnr', '00835066691', 'date', 'day 00'],
  ['fnr', '57840408819', 'wrong-kind', 'a D-number sent as FNR'],
  ['fnr', '08518059638', 'date', 'an H-number sent as FNR (month 45)'],
  ['dnr', '11835066691', 'wrong-kind', 'an FNR sent as D-number'],
  ['dnr', '86506606111', 'wrong-kind', 'an FH-number sent as D-number'],
  ['fhn', '11835066691', 'wrong-kind', 'an FNR sent as FH-number'],
  ['fhn', '86506606112', 'check-digits', 'FH-number with a wrong K2'],
  ['hnr', '11835066691', 'wrong-kind', 'a synthetic FNR sent as H-number'],
];

describe('national id validation', () => {
  test.each(valid)('%s %s is valid (%s)', (kind, value) => {
    const result = parseNationalIdValue(kind, value, dev, kind === 'hnr' ? ASSIGNER : undefined);
    expect(result).toEqual({ ok: true, id: expect.objectContaining({ kind, value }) });
  });

  test.each(invalid)('%s %s is invalid: %s (%s)', (kind, value, problem) => {
    expect(parseNationalIdValue(kind, value, dev, ASSIGNER)).toEqual({ ok: false, problem });
  });

  test('spaces inside a number are ignored', () => {
    expect(parseNationalIdValue('fnr', '118350 66691', dev)).toMatchObject({
      ok: true,
      id: { value: '11835066691' },
    });
  });

  test('a local H-number needs its assigner', () => {
    expect(parseNationalIdValue('hnr', '08518059638', dev)).toEqual({
      ok: false,
      problem: 'missing-assigner',
    });
  });

  test('production refuses synthetic numbers, development accepts them', () => {
    expect(parseNationalIdValue('fnr', '11835066691', prod)).toEqual({
      ok: false,
      problem: 'synthetic-in-production',
    });
    expect(parseNationalIdValue('dnr', '57840408819', prod)).toEqual({
      ok: false,
      problem: 'synthetic-in-production',
    });
    expect(parseNationalIdValue('fnr', '11835066691', dev)).toMatchObject({
      ok: true,
      id: { synthetic: true },
    });
    // Local H-numbers and FH-numbers carry no synthetic marker and are accepted in production.
    expect(parseNationalIdValue('hnr', '08518059638', prod, ASSIGNER)).toMatchObject({
      ok: true,
      id: { synthetic: false },
    });
    expect(parseNationalIdValue('fhn', '86506606111', prod)).toMatchObject({ ok: true });
  });

  test('only the four 2032-rule K1 values are accepted', () => {
    const random = seededRandom(42);
    for (let n = 0; n < 100; n++) {
      const value = syntheticNationalId('fnr', { random, rule2032: n % 2 === 0 });
      const digits = [...value].map(Number);
      const allowed = validK1(digits);
      expect(allowed.length).toBeGreaterThanOrEqual(3);
      for (let k1 = 0; k1 <= 9; k1++) {
        if (allowed.includes(k1)) {
          continue;
        }
        // With K2 recomputed, a K1 outside the four must still fail.
        for (let k2 = 0; k2 <= 9; k2++) {
          const candidate = value.slice(0, 9) + String(k1) + String(k2);
          expect(parseNationalIdValue('fnr', candidate, dev).ok).toBe(false);
        }
      }
    }
  });

  test('the result carries neither sex nor birth date nor century', () => {
    const result = parseNationalIdValue('fnr', '11835066691', dev);
    expect(result.ok && Object.keys(result.id).sort()).toEqual(['kind', 'synthetic', 'value']);
  });
});

describe('identifier systems', () => {
  test.each([
    ['urn:oid:2.16.578.1.12.4.1.4.1', 'fnr'],
    ['http://hl7.no/fhir/NamingSystem/FNR', 'fnr'],
    ['urn:oid:2.16.578.1.12.4.1.4.2', 'dnr'],
    ['http://hl7.no/fhir/NamingSystem/DNR', 'dnr'],
    ['urn:oid:2.16.578.1.12.4.1.4.3', 'fhn'],
    ['http://hl7.no/fhir/NamingSystem/FHNR', 'fhn'],
    ['urn:oid:2.16.578.1.12.4.1.4.4', undefined],
    ['urn:oid:2.16.578.1.12.4.1.4.102', undefined],
  ])('%s → %s', (system, kind) => {
    expect(nationalIdKindOf({ system, value: '1' })).toBe(kind);
  });

  test('a local H-number is recognised by its type, whatever its system', () => {
    expect(
      nationalIdKindOf({
        system: 'urn:oid:1.2.3',
        type: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.8327', code: 'HNR' }] },
      }),
    ).toBe('hnr');
  });
});

describe('extractNationalIds', () => {
  test('an invalid number is a 422 naming the identifier, without the number', () => {
    const identifiers: Identifier[] = [
      { system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: '11835066692' },
      { system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: '11835066691' },
    ];
    let error: unknown;
    try {
      extractNationalIds(identifiers, 'Patient.identifier', dev);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FhirError);
    const fhirError = error as FhirError;
    expect(fhirError.status).toBe(422);
    expect(fhirError.outcome.issue[0].expression).toEqual(['Patient.identifier[0]']);
    expect(JSON.stringify(fhirError.outcome)).not.toContain('1183506669');
    expect(fhirError.message).not.toContain('1183506669');
  });

  test('other identifiers are ignored; an H-number without assigner is refused', () => {
    const found = extractNationalIds(
      [{ system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '123' }, syntheticIdentifier('dnr')],
      'Patient.identifier',
      dev,
    );
    expect(found.map((f) => [f.index, f.id.kind])).toEqual([[1, 'dnr']]);
    const hnr = syntheticIdentifier('hnr');
    delete hnr.assigner;
    expect(() => extractNationalIds([hnr], 'Patient.identifier', dev)).toThrow(/assigner/);
  });
});

describe('synthetic generator', () => {
  test.each(['fnr', 'dnr', 'hnr', 'fhn'] as const)('generates valid %s numbers', (kind) => {
    const random = seededRandom(7);
    for (let n = 0; n < 500; n++) {
      const identifier = syntheticIdentifier(kind, { random, rule2032: n % 3 === 0 });
      const found = extractNationalIds([identifier], 'Patient.identifier', dev);
      expect(found).toHaveLength(1);
      expect(found[0].id.kind).toBe(kind);
    }
  });

  test('generated FNR and D-numbers are synthetic, so production refuses them', () => {
    for (const kind of ['fnr', 'dnr'] as const) {
      const value = syntheticNationalId(kind);
      expect(parseNationalIdValue(kind, value, prod)).toEqual({
        ok: false,
        problem: 'synthetic-in-production',
      });
      expect(Number(value.slice(2, 4))).toBeGreaterThan(80);
    }
  });
});
