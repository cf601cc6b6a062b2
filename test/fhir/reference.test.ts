import {
  formatReference,
  identifierOfConditional,
  literalKey,
  literalKeyOf,
  literalOf,
  parseEntryUrl,
  parseLiteralKey,
  parseReference,
  type ParsedReference,
  referenceSites,
} from '../../src/fhir/reference';
import { syntheticNationalId } from '../../src/identity/synthetic';

const BASE = 'https://norpain.example.no/fhir';

function parsed(text: string): ParsedReference {
  const result = parseReference(text, { ownBases: [BASE] });
  if (!result.ok) throw new Error(`expected ${text} to parse: ${result.reason}`);
  return result.reference;
}

function reason(text: string): string {
  const result = parseReference(text, { ownBases: [BASE] });
  if (result.ok) throw new Error(`expected ${text} to be refused`);
  return result.reason;
}

describe('parseReference: the canonical forms', () => {
  test.each([
    ['Patient/abc-1.2', { kind: 'literal', resourceType: 'Patient', id: 'abc-1.2' }],
    ['Patient/p1/_history/3', { kind: 'literal', resourceType: 'Patient', id: 'p1', version: '3' }],
    ['#c1', { kind: 'contained', id: 'c1' }],
    [
      'urn:uuid:6d1f7c2a-5b8e-4f0a-a1c3-2e9b7d4c8f00',
      { kind: 'placeholder', uuid: '6d1f7c2a-5b8e-4f0a-a1c3-2e9b7d4c8f00' },
    ],
    ['Patient?identifier=a|b', { kind: 'conditional', resourceType: 'Patient', query: 'identifier=a|b' }],
  ])('%s', (text, expected) => {
    const reference = parsed(text);
    expect(reference).toEqual(expected);
    expect(formatReference(reference)).toBe(text);
  });

  test("this server's absolute URL becomes relative; only at a path boundary", () => {
    expect(formatReference(parsed(`${BASE}/Patient/p1`))).toBe('Patient/p1');
    expect(formatReference(parsed(`${BASE}/Patient/p1/_history/2`))).toBe('Patient/p1/_history/2');
    expect(reason(`${BASE}x/Patient/p1`)).toMatch(/points elsewhere/);
    expect(parseReference(`${BASE}/Patient/p1`).ok).toBe(false); // no own base given: not accepted
  });
});

describe('parseReference: everything else is refused with a reason', () => {
  test.each([
    ['patient/p1', /case-sensitive \(did you mean "Patient"\?\)/],
    ['Patient/p1/', /without a trailing slash/],
    ['Patient/', /not a valid resource id/],
    ['Patient/_history', /not a valid resource id/],
    ['Patient/a_b', /not a valid resource id/],
    [`Patient/${'x'.repeat(65)}`, /not a valid resource id/],
    ['Patient/p1/_history/', /version/],
    ['Patient/p1/_history/1/', /Type\/id/],
    ['Patient/p1/extra', /Type\/id/],
    ['Nonsense/p1', /not a FHIR R4 resource type/],
    [' Patient/p1', /white space/],
    ['Patient/p1\n', /white space/],
    ['', /1 to 4096/],
    ['#', /contained resource id/],
    ['#a b', /white space/],
    ['urn:uuid:6D1F7C2A-5B8E-4F0A-A1C3-2E9B7D4C8F00', /lower-case UUID/],
    ['urn:uuid:not-a-uuid', /lower-case UUID/],
    ['urn:oid:1.2.3', /points elsewhere/],
    ['https://other.example.no/fhir/Patient/p1', /points elsewhere/],
    ['Patient?', /needs search parameters/],
    ['Patient?identifier=a|b#x', /no fragment/],
    ['patient?identifier=a|b', /case-sensitive/],
  ])('%j', (text, expected) => {
    expect(reason(text)).toMatch(expected);
  });

  test('the reason names what is wrong, never what was sent', () => {
    const sent = `${'1'.repeat(11)}${'x'.repeat(80)}_`;
    for (const text of [`${sent}/p1`, `Patient/${sent}`, `#${sent}`, `${sent}?identifier=a|b`]) {
      expect(reason(text)).not.toContain(sent.slice(0, 11));
    }
  });
});

describe('identifierOfConditional and literalKeyOf', () => {
  test('exactly identifier=system|value, percent-decoded', () => {
    expect(identifierOfConditional(parsed('Patient?identifier=urn%3Aoid%3A1.2%7C42'))).toEqual({
      system: 'urn:oid:1.2',
      value: '42',
    });
    for (const text of [
      'Patient?identifier=a|b&_id=x',
      'Patient?identifier=a|b,c|d',
      'Patient?identifier=|b',
      'Patient?identifier=a|',
      'Patient?name=a|b',
    ]) {
      expect(identifierOfConditional(parsed(text))).toBeUndefined();
    }
    expect(identifierOfConditional(parsed('Patient/p1'))).toBeUndefined();
  });

  test('the Type/id of a literal, whatever its version; nothing for other forms', () => {
    expect(literalKeyOf('Patient/p1/_history/3')).toBe('Patient/p1');
    expect(literalKeyOf('Patient/p1')).toBe('Patient/p1');
    expect(literalKeyOf('#c1')).toBeUndefined();
    expect(literalKeyOf('patient/p1')).toBeUndefined();
    expect(literalKeyOf('Patient?identifier=a|b')).toBeUndefined();
  });
});

describe('literalOf, parseLiteralKey and parseEntryUrl: parsing again by the same rules', () => {
  test('literalOf: a literal with its version; a Location of this server with its base', () => {
    expect(literalOf('Provenance/p1/_history/2')).toEqual({
      kind: 'literal',
      resourceType: 'Provenance',
      id: 'p1',
      version: '2',
    });
    expect(literalOf(`${BASE}/Patient/p1/_history/1`, BASE)).toMatchObject({
      resourceType: 'Patient',
      id: 'p1',
    });
    expect(literalOf(`${BASE}/Patient/p1`)).toBeUndefined(); // an absolute URL only with its base
    expect(literalOf('Patient?identifier=a|b')).toBeUndefined();
    expect(literalOf('#c1')).toBeUndefined();
  });

  test('parseLiteralKey is the inverse of literalKey', () => {
    for (const key of ['Patient/p1', 'Condition/abc-1.2', `Encounter/${'x'.repeat(64)}`]) {
      const parts = parseLiteralKey(key);
      expect(parts).toBeDefined();
      expect(literalKey(parts as NonNullable<typeof parts>)).toBe(key);
    }
    expect(parseLiteralKey('Patient/p1')).toEqual({ resourceType: 'Patient', id: 'p1' });
  });

  // An id shaped like a national id is a FHIR id like any other: keeping it out of logs and answers is
  // the caller's rule (src/fhir/audit.ts), not the parser's.
  test('a national-id-shaped id parses like any other id', () => {
    const fnr = syntheticNationalId('fnr');
    expect(parseLiteralKey(`Patient/${fnr}`)).toEqual({ resourceType: 'Patient', id: fnr });
  });

  test.each([
    'Patient/',
    '/x',
    '/',
    '',
    'Patient',
    'patient/1',
    'PATIENT/1',
    'Nonsense/1',
    'Patient/1/2',
    'Patient/1/',
    'Patient//1',
    'Patient/1/_history/2',
    `Patient/${'x'.repeat(65)}`,
    'Patient/a b',
    'Patient/a%20b',
    'Patient/a_b',
    ' Patient/1',
    'Patient/1\n',
    '#p1',
    'Patient?_id=1',
    'urn:uuid:6d1f7c2a-5b8e-4f0a-a1c3-2e9b7d4c8f00',
    `${BASE}/Patient/1`,
  ])('parseLiteralKey refuses %j', (key) => {
    expect(parseLiteralKey(key)).toBeUndefined();
  });

  test('parseEntryUrl: Type, Type/id or Type?query, as the write path writes them', () => {
    expect(parseEntryUrl('Patient')).toEqual({ resourceType: 'Patient' });
    expect(parseEntryUrl('Patient/p1')).toEqual({ resourceType: 'Patient', id: 'p1' });
    expect(parseEntryUrl('Patient?identifier=a|b&_id=x')).toEqual({
      resourceType: 'Patient',
      query: 'identifier=a|b&_id=x',
    });
    // The query is the store's to read, however long or odd.
    const long = `name=${'a b'.repeat(3000)}`;
    expect(parseEntryUrl(`Condition?${long}`)).toEqual({ resourceType: 'Condition', query: long });
  });

  test.each([
    '',
    '?_id=1',
    'patient',
    'patient?_id=1',
    'Patient/',
    'Patient/p1/',
    'Patient/p1?_id=p1',
    'Patient/p1/_history/1',
    'Patient/p1/$everything',
    'Patient/a b',
    `Patient/${'x'.repeat(65)}`,
    `${BASE}/Patient/p1`,
  ])('parseEntryUrl refuses %j', (url) => {
    expect(parseEntryUrl(url)).toBeUndefined();
  });
});

describe('referenceSites', () => {
  test('finds every Reference at any depth, in extensions and contained resources, with its path', () => {
    const resource = {
      resourceType: 'QuestionnaireResponse',
      subject: { reference: 'Patient/p1' },
      extension: [{ url: 'x', valueReference: { reference: '#c1' } }],
      contained: [
        { resourceType: 'Practitioner', id: 'c1', extension: [{ valueReference: { reference: 'A/b' } }] },
      ],
      item: [{ answer: [{ valueString: 'x' }, { valueReference: { reference: 'Patient/p2' } }] }],
      identifier: { value: 'reference' },
      note: [{ text: 'reference' }],
    };
    const sites = referenceSites(resource, 'QuestionnaireResponse');
    expect(sites.map((s) => [s.expression, s.node.reference])).toEqual([
      ['QuestionnaireResponse.subject', 'Patient/p1'],
      ['QuestionnaireResponse.extension[0].valueReference', '#c1'],
      ['QuestionnaireResponse.contained[0].extension[0].valueReference', 'A/b'],
      ['QuestionnaireResponse.item[0].answer[1].valueReference', 'Patient/p2'],
    ]);
    // The nodes are the resource's own objects, so the door can rewrite them in place.
    sites[0].node.reference = 'Patient/p9';
    expect(resource.subject.reference).toBe('Patient/p9');
  });

  test('an element that merely holds a non-string "reference" is not a Reference', () => {
    expect(referenceSites({ a: { reference: 1 }, b: { reference: null } }, 'X')).toEqual([]);
  });
});
