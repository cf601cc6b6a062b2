import { OperationOutcomeError, tryGetDataType, validateResource } from '@medplum/core';
import type {
  OperationOutcomeIssue,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Resource,
} from '@medplum/fhirtypes';
import fc from 'fast-check';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { baseValidationIssues } from '../../src/validation/base';
import {
  IMPLEMENTED_INVARIANTS,
  itemListSchema,
  itemsConform,
  MEDPLUM_SKIPPED_INVARIANTS,
} from '../../src/validation/fast/response-items';
import { loadNorPainProfiles, profileIssues } from '../../src/validation/profiles';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { fillResponse } from './responses';

/**
 * The compiled item check (src/validation/fast) must never accept an item tree that @medplum/core's
 * full validateResource rejects, and base validation must report every error the full path reports,
 * at the same expression. Checked on a corpus of broken responses and on random mutations of a
 * complete NorPain baseline response.
 */

beforeAll(() => {
  loadFhirDefinitions();
  loadNorPainProfiles();
});

const questionnaires = readNorPainQuestionnaires();
const baseline = questionnaires.find((q) => q.url?.endsWith('/norpain-baseline'));
if (!baseline) {
  throw new Error('the NorPain baseline Questionnaire is missing');
}

function response(item: unknown): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: 'http://example.org/q|1',
    status: 'completed',
    subject: { reference: 'Patient/p1' },
    item,
  } as QuestionnaireResponse;
}

/** Errors of @medplum/core's full validateResource (the slow path the fast one stands in for). */
function medplumErrors(resource: Resource): OperationOutcomeIssue[] {
  try {
    return validateResource(resource).filter((i) => i.severity === 'error');
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) {
      // Thrown on some malformed content (`"_valueString": true`): a rejection without an expression.
      return [{ severity: 'error', code: 'exception' }];
    }
    return (err.outcome.issue ?? []).filter((i) => i.severity === 'error');
  }
}

const expressions = (issues: OperationOutcomeIssue[]): string[] => issues.flatMap((i) => i.expression ?? []);

/** Every error of the full path is reported by base validation at the same expression. */
function expectAtLeastMedplum(
  resource: QuestionnaireResponse,
  full: OperationOutcomeIssue[] = medplumErrors(resource),
): void {
  const fast = baseValidationIssues(resource);
  expect(expressions(fast)).toEqual(expect.arrayContaining(expressions(full)));
  if (full.length > 0) {
    expect(fast.length).toBeGreaterThan(0);
  }
}

const NOW = '2025-03-01T10:00:00+01:00';

describe('NorPain responses take the fast path', () => {
  test.each(questionnaires.map((q) => [q.url as string, q] as const))('a filled %s', (_url, q) => {
    const filled = fillResponse(q);
    expect(itemsConform(filled.item)).toBe(true);
    expect(medplumErrors(filled)).toEqual([]);
    expect(baseValidationIssues(filled)).toEqual([]);
    expect(profileIssues(filled).filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('a corpus of broken item trees: rejected, at the expression of the full path or a more precise one', () => {
  const corpus: [string, unknown, string][] = [
    ['unknown property in an item', [{ linkId: 'a', foo: 1 }], 'QuestionnaireResponse.item[0].foo'],
    [
      'unknown property in an answer',
      [{ linkId: 'a', answer: [{ valueString: 'x', score: 3 }] }],
      'QuestionnaireResponse.item[0].answer[0].score',
    ],
    [
      'unknown property in a Coding',
      [{ linkId: 'a', answer: [{ valueCoding: { code: 'x', weight: 1 } }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x].weight',
    ],
    ['missing linkId', [{ text: 'Spørsmål' }], 'QuestionnaireResponse.item[0].linkId'],
    ['blank linkId', [{ linkId: '  ' }], 'QuestionnaireResponse.item[0].linkId'],
    ['numeric linkId', [{ linkId: 7 }], 'QuestionnaireResponse.item[0].linkId'],
    [
      'impossible date',
      [{ linkId: 'a', answer: [{ valueDate: '2025-13-01' }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'dateTime in words',
      [{ linkId: 'a', answer: [{ valueDateTime: 'yesterday' }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'time out of range',
      [{ linkId: 'a', answer: [{ valueTime: '25:00:00' }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'fractional integer',
      [{ linkId: 'a', answer: [{ valueInteger: 1.5 }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'decimal as a string',
      [{ linkId: 'a', answer: [{ valueDecimal: '3.5' }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'decimal that is not a number',
      [{ linkId: 'a', answer: [{ valueDecimal: Number.NaN }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'boolean as a string',
      [{ linkId: 'a', answer: [{ valueBoolean: 'true' }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'uri with a space',
      [{ linkId: 'a', answer: [{ valueUri: 'http://a b' }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'blank string',
      [{ linkId: 'a', answer: [{ valueString: ' \n' }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    ],
    [
      'code with two spaces, nested',
      [{ linkId: 'g', item: [{ linkId: 'a', answer: [{ valueCoding: { code: 'a  b' } }] }] }],
      'QuestionnaireResponse.item[0].item[0].answer[0].value[x].code',
    ],
    [
      'quantity value as a string',
      [{ linkId: 'a', answer: [{ valueQuantity: { value: '70', unit: 'kg' } }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x].value',
    ],
    [
      'negative attachment size',
      [{ linkId: 'a', answer: [{ valueAttachment: { contentType: 'text/plain', size: -1 } }] }],
      'QuestionnaireResponse.item[0].answer[0].value[x].size',
    ],
    [
      'nested item under both item and answer (qrs-1)',
      [{ linkId: 'a', answer: [{ valueString: 'x' }], item: [{ linkId: 'b' }] }],
      'QuestionnaireResponse.item[0]',
    ],
    ['empty answer', [{ linkId: 'a', answer: [{}] }], 'QuestionnaireResponse.item[0].answer[0]'],
    [
      'answer not a list',
      [{ linkId: 'a', answer: { valueString: 'x' } }],
      'QuestionnaireResponse.item.answer',
    ],
    [
      'null value',
      [{ linkId: 'a', answer: [{ valueString: null }] }],
      'QuestionnaireResponse.item[0].answer[0].valueString',
    ],
    [
      'extension without url',
      [{ linkId: 'a', extension: [{ valueString: 'y' }] }],
      'QuestionnaireResponse.item[0].extension[0].url',
    ],
  ];

  test.each(corpus)('%s', (_name, items, expression) => {
    const resource = response(items);
    expect(itemsConform(items)).toBe(false);
    expect(expressions(medplumErrors(resource))).toContain(expression);
    expect(expressions(baseValidationIssues(resource))).toContain(expression);
    expectAtLeastMedplum(resource);
  });

  test('content that makes the full validator throw is a rejection at the element, not a crash', () => {
    const resource = response([{ linkId: 'a', _linkId: true }]);
    expect(() => validateResource(resource)).toThrow('Primitive extension must be an object');
    expect(baseValidationIssues(resource)).toEqual([
      expect.objectContaining({
        severity: 'error',
        code: 'structure',
        expression: ['QuestionnaireResponse.item[0]._linkId'],
      }),
    ]);
  });

  test('an answer with two values: an error at the second value (the full path only warns)', () => {
    const resource = response([{ linkId: 'a', answer: [{ valueString: 'x', valueInteger: 1 }] }]);
    expect(medplumErrors(resource)).toEqual([]);
    expect(expressions(baseValidationIssues(resource))).toEqual([
      'QuestionnaireResponse.item[0].answer[0].valueInteger',
    ]);
  });

  test('answered items repeated under one parent (qrs-2): an error at the repeat', () => {
    const resource = response([
      {
        linkId: 'g',
        item: [
          { linkId: 'a', answer: [{ valueInteger: 1 }] },
          { linkId: 'a', answer: [{ valueInteger: 2 }] },
        ],
      },
    ]);
    expect(expressions(baseValidationIssues(resource))).toEqual(['QuestionnaireResponse.item[0].item[1]']);
    // Repeated groups, and unanswered repeats, are fine.
    const groups = response([
      { linkId: 'g', item: [{ linkId: 'a', answer: [{ valueInteger: 1 }] }] },
      { linkId: 'g', item: [{ linkId: 'a', answer: [{ valueInteger: 2 }] }] },
    ]);
    expect(baseValidationIssues(groups)).toEqual([]);
  });

  test('valid trees outside the common shape go to the full validator and are accepted', () => {
    const unusual = [
      { linkId: 'a', extension: [{ url: 'http://example.org/x', valueString: 'y' }], text: 'x' },
      { linkId: 'b', answer: [{ valueReference: { reference: 'Patient/p1' } }] },
      {
        linkId: 'c',
        answer: [{ _valueString: { extension: [{ url: 'http://example.org/x', valueBoolean: true }] } }],
      },
    ];
    expect(itemsConform(unusual)).toBe(false);
    expect(medplumErrors(response(unusual))).toEqual([]);
    expect(baseValidationIssues(response(unusual))).toEqual([]);
  });

  test('the profile path reports the same item errors', () => {
    const resource = response([{ linkId: 'a', answer: [{ valueDate: '2025-13-01' }] }]);
    expect(expressions(profileIssues(resource).filter((i) => i.severity === 'error'))).toContain(
      'QuestionnaireResponse.item[0].answer[0].value[x]',
    );
  });
});

describe('the compiled schema covers what @medplum/core checks', () => {
  test('every invariant @medplum/core evaluates on the covered types is implemented by the schema', () => {
    const definitions = Object.keys(itemListSchema().definitions as Record<string, unknown>);
    const medplumName = (name: string): string =>
      ({
        QuestionnaireResponse_Item: 'QuestionnaireResponseItem',
        QuestionnaireResponse_Answer: 'QuestionnaireResponseItemAnswer',
      })[name] ?? name;
    const evaluated = new Set<string>();
    for (const name of definitions) {
      const schema = tryGetDataType(medplumName(name));
      for (const [key, element] of Object.entries(schema?.elements ?? {})) {
        if (key === 'extension' || key === 'modifierExtension') {
          continue; // left out of the common shape
        }
        for (const constraint of element.constraints ?? []) {
          if (constraint.severity === 'error' && !MEDPLUM_SKIPPED_INVARIANTS.has(constraint.key)) {
            evaluated.add(constraint.key);
          }
        }
      }
    }
    // The item elements themselves carry qrs-1 in the QuestionnaireResponse definition.
    for (const constraint of tryGetDataType('QuestionnaireResponse')?.elements.item?.constraints ?? []) {
      if (constraint.severity === 'error' && !MEDPLUM_SKIPPED_INVARIANTS.has(constraint.key)) {
        evaluated.add(constraint.key);
      }
    }
    expect([...evaluated].sort()).toEqual(Object.keys(IMPLEMENTED_INVARIANTS).sort());
  });
});

describe('random mutations of a complete baseline response', () => {
  const complete = fillResponse(baseline, {}, 1);

  /** Every object (item, answer, Coding, …) and array in the tree, to pick a place to mutate. */
  function places(items: QuestionnaireResponseItem[]): (Record<string, unknown> | unknown[])[] {
    const found: (Record<string, unknown> | unknown[])[] = [items];
    const visit = (value: unknown): void => {
      if (Array.isArray(value)) {
        found.push(value);
        value.forEach(visit);
      } else if (typeof value === 'object' && value !== null) {
        found.push(value as Record<string, unknown>);
        Object.values(value).forEach(visit);
      }
    };
    items.forEach(visit);
    return found;
  }

  const keys = fc.constantFrom(
    'linkId',
    'text',
    'definition',
    'id',
    'answer',
    'item',
    'valueString',
    'valueCoding',
    'valueInteger',
    'valueDecimal',
    'valueDate',
    'valueDateTime',
    'valueTime',
    'valueBoolean',
    'valueUri',
    'valueQuantity',
    'valueAttachment',
    'valueReference',
    '_valueString',
    'extension',
    'system',
    'code',
    'display',
    'version',
    'userSelected',
    'value',
    'unit',
    'comparator',
    'size',
    'contentType',
    'reference',
    'resourceType',
    'foo',
  );
  const strings = fc.constantFrom(
    '2025-01-01',
    '2025-13-01',
    '2025-02',
    '10:00:00',
    '2025-01-01T10:00:00+01:00',
    '2025-01-01T10',
    NOW,
    'http://example.org/x',
    'a b',
    'a  b',
    '',
    ' ',
    'x',
    '<',
    'ok\u0000',
    '\uD83D\uDE00',
    'Patient/p1',
  );
  const values = fc.oneof(
    strings,
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant({}),
    fc.constant([]),
    fc.constant([{ linkId: 'n' }]),
    fc.constant({ code: 'x', system: 'http://example.org/cs' }),
    fc.jsonValue({ maxDepth: 2 }),
  );
  const mutation = fc.record({
    place: fc.nat(),
    kind: fc.constantFrom('set', 'delete', 'element'),
    key: keys,
    value: values,
  });

  test('whenever the compiled check accepts, the full validator accepts; base reports all it reports', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const items = structuredClone(complete.item ?? []);
        for (const m of mutations) {
          const all = places(items);
          const target = all[m.place % all.length];
          if (Array.isArray(target)) {
            if (m.kind === 'delete') {
              target.splice(m.place % Math.max(target.length, 1), 1);
            } else {
              target[m.place % (target.length + 1)] = m.value;
            }
          } else if (m.kind === 'delete') {
            delete target[m.key];
          } else {
            target[m.key] = m.value;
          }
        }
        const resource = response(items);
        const full = medplumErrors(resource);
        if (itemsConform(items)) {
          expect(full).toEqual([]);
        }
        expectAtLeastMedplum(resource, full);
      }),
      { numRuns: 250 },
    );
  });
});
