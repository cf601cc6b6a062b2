import type {
  OperationOutcomeIssue,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
} from '@medplum/fhirtypes';
import { compileQuestionnaire, validateQuestionnaireResponse } from '../../src/validation/questionnaire';

const S = 'http://example.org/cs';

function questionnaire(item: QuestionnaireItem[], extra: Partial<Questionnaire> = {}): Questionnaire {
  return {
    resourceType: 'Questionnaire',
    url: 'http://example.org/q',
    version: '1',
    status: 'active',
    item,
    ...extra,
  };
}

function check(
  q: Questionnaire,
  item: QuestionnaireResponseItem[],
  status: QuestionnaireResponse['status'] = 'completed',
): OperationOutcomeIssue[] {
  const compiled = compileQuestionnaire(q);
  expect(compiled.issues).toEqual([]);
  return validateQuestionnaireResponse(compiled, {
    resourceType: 'QuestionnaireResponse',
    questionnaire: 'http://example.org/q|1',
    status,
    item,
  });
}

/** The single issue's expression and a fragment of its text. */
function only(issues: OperationOutcomeIssue[]): { expression: string | undefined; text: string } {
  expect(issues).toHaveLength(1);
  return { expression: issues[0].expression?.[0], text: issues[0].details?.text ?? '' };
}

const coding = (code: string, system = S) => ({ valueCoding: { system, code } });

describe('linkIds exist and sit where the Questionnaire puts them', () => {
  const q = questionnaire([
    { linkId: 'g', type: 'group', item: [{ linkId: 'a', type: 'string' }] },
    { linkId: 'b', type: 'string' },
  ]);

  it('accepts items in their place', () => {
    expect(
      check(q, [
        { linkId: 'g', item: [{ linkId: 'a', answer: [{ valueString: 'x' }] }] },
        { linkId: 'b', answer: [{ valueString: 'y' }] },
      ]),
    ).toEqual([]);
  });

  it('refuses an unknown linkId', () => {
    const { expression, text } = only(check(q, [{ linkId: 'zzz', answer: [{ valueString: 'x' }] }]));
    expect(expression).toBe('QuestionnaireResponse.item[0].linkId');
    expect(text).toContain("'zzz' is not in Questionnaire http://example.org/q|1");
  });

  it('refuses a known item at the wrong nesting level', () => {
    const { expression, text } = only(check(q, [{ linkId: 'a', answer: [{ valueString: 'x' }] }]));
    expect(expression).toBe('QuestionnaireResponse.item[0].linkId');
    expect(text).toContain("inside 'g'");
  });

  it('refuses items out of order', () => {
    const issues = check(q, [
      { linkId: 'b', answer: [{ valueString: 'y' }] },
      { linkId: 'g', item: [{ linkId: 'a', answer: [{ valueString: 'x' }] }] },
    ]);
    expect(only(issues).expression).toBe('QuestionnaireResponse.item[1]');
    expect(only(issues).text).toContain('out of order');
  });
});

describe('answer type matches item type', () => {
  const cases: [QuestionnaireItem['type'], Record<string, unknown>, Record<string, unknown>][] = [
    ['boolean', { valueBoolean: true }, { valueString: 'true' }],
    ['decimal', { valueDecimal: 1.5 }, { valueInteger: 1 }],
    ['integer', { valueInteger: 2 }, { valueDecimal: 2 }],
    ['date', { valueDate: '2024-01-01' }, { valueDateTime: '2024-01-01T00:00:00Z' }],
    ['dateTime', { valueDateTime: '2024-01-01T10:00:00Z' }, { valueDate: '2024-01-01' }],
    ['time', { valueTime: '10:00:00' }, { valueString: '10:00' }],
    ['string', { valueString: 'x' }, { valueInteger: 1 }],
    ['text', { valueString: 'x\ny' }, { valueBoolean: false }],
    ['url', { valueUri: 'http://x' }, { valueString: 'http://x' }],
    ['choice', { valueCoding: { system: S, code: 'a' } }, { valueString: 'a' }],
    ['open-choice', { valueString: 'free text' }, { valueInteger: 3 }],
    ['attachment', { valueAttachment: { contentType: 'text/plain' } }, { valueString: 'x' }],
    ['reference', { valueReference: { reference: 'Patient/1' } }, { valueString: 'Patient/1' }],
    ['quantity', { valueQuantity: { value: 1, unit: 'kg' } }, { valueDecimal: 1 }],
  ];
  it.each(cases)('%s accepts its own value type and refuses another', (type, good, bad) => {
    const q = questionnaire([{ linkId: 'x', type }]);
    expect(check(q, [{ linkId: 'x', answer: [good] }])).toEqual([]);
    const { expression, text } = only(check(q, [{ linkId: 'x', answer: [bad] }]));
    expect(expression).toBe('QuestionnaireResponse.item[0].answer[0]');
    expect(text).toContain(`of type ${type}`);
  });

  it('choice with integer options takes valueInteger', () => {
    const q = questionnaire([
      { linkId: 'x', type: 'choice', answerOption: [{ valueInteger: 1 }, { valueInteger: 2 }] },
    ]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueInteger: 2 }] }])).toEqual([]);
    expect(only(check(q, [{ linkId: 'x', answer: [{ valueCoding: { code: '2' } }] }])).text).toContain(
      'valueInteger',
    );
  });
});

describe('repeats', () => {
  const q = (repeats: boolean) => questionnaire([{ linkId: 'x', type: 'integer', repeats }]);
  it('allows several answers to a repeating question', () => {
    expect(check(q(true), [{ linkId: 'x', answer: [{ valueInteger: 1 }, { valueInteger: 2 }] }])).toEqual([]);
  });
  it('refuses several answers to a non-repeating question', () => {
    const { expression } = only(
      check(q(false), [{ linkId: 'x', answer: [{ valueInteger: 1 }, { valueInteger: 2 }] }]),
    );
    expect(expression).toBe('QuestionnaireResponse.item[0].answer[1]');
  });
  it('refuses a question split over two items even when it repeats', () => {
    const issues = check(q(true), [
      { linkId: 'x', answer: [{ valueInteger: 1 }] },
      { linkId: 'x', answer: [{ valueInteger: 2 }] },
    ]);
    expect(only(issues).text).toContain('all its answers belong in one item');
  });
  it('allows a repeating group to appear several times, but not a non-repeating one', () => {
    const group = (repeats: boolean) =>
      questionnaire([{ linkId: 'g', type: 'group', repeats, item: [{ linkId: 'a', type: 'string' }] }]);
    const two = [
      { linkId: 'g', item: [{ linkId: 'a', answer: [{ valueString: '1' }] }] },
      { linkId: 'g', item: [{ linkId: 'a', answer: [{ valueString: '2' }] }] },
    ];
    expect(check(group(true), two)).toEqual([]);
    expect(only(check(group(false), two)).expression).toBe('QuestionnaireResponse.item[1]');
  });
});

describe('required items when enabled', () => {
  const q = questionnaire([
    { linkId: 'a', type: 'string', required: true },
    { linkId: 'b', type: 'boolean' },
    {
      linkId: 'c',
      type: 'string',
      required: true,
      enableWhen: [{ question: 'b', operator: '=', answerBoolean: true }],
    },
    { linkId: 'g', type: 'group', required: true, item: [{ linkId: 'd', type: 'string' }] },
  ]);
  const g = { linkId: 'g', item: [{ linkId: 'd', answer: [{ valueString: 'x' }] }] };

  it('accepts a completed response with every required enabled item answered', () => {
    expect(
      check(q, [
        { linkId: 'a', answer: [{ valueString: 'x' }] },
        { linkId: 'b', answer: [{ valueBoolean: false }] },
        g,
      ]),
    ).toEqual([]);
  });
  it('refuses a completed response missing a required question', () => {
    const { expression, text } = only(check(q, [g]));
    expect(expression).toBe('QuestionnaireResponse');
    expect(text).toContain("Required item 'a'");
  });
  it('refuses a completed response with a required question present but unanswered', () => {
    const { expression } = only(check(q, [{ linkId: 'a' }, g]));
    expect(expression).toBe('QuestionnaireResponse.item[0]');
  });
  it('refuses a missing required group', () => {
    expect(only(check(q, [{ linkId: 'a', answer: [{ valueString: 'x' }] }])).text).toContain(
      "Required item 'g'",
    );
  });
  it('requires an item only while its enableWhen holds', () => {
    const issues = check(q, [
      { linkId: 'a', answer: [{ valueString: 'x' }] },
      { linkId: 'b', answer: [{ valueBoolean: true }] },
      g,
    ]);
    expect(only(issues).text).toContain("Required item 'c'");
  });
  it('does not require answers of an in-progress response', () => {
    expect(check(q, [], 'in-progress')).toEqual([]);
  });
  it('requires them again for amended', () => {
    expect(check(q, [g], 'amended')).toHaveLength(1);
  });
});

describe('enableWhen operators and enableBehavior', () => {
  const gated = (
    ew: NonNullable<QuestionnaireItem['enableWhen']>[number],
    type: QuestionnaireItem['type'] = 'integer',
    extra: Partial<QuestionnaireItem> = {},
  ) =>
    questionnaire([
      { linkId: 'q', type, ...extra },
      { linkId: 't', type: 'string', enableWhen: [ew] },
    ]);
  const run = (q: Questionnaire, answer: Record<string, unknown> | undefined) =>
    check(q, [
      ...(answer ? [{ linkId: 'q', answer: [answer] }] : []),
      { linkId: 't', answer: [{ valueString: 'x' }] },
    ]);
  const enabled = (q: Questionnaire, answer: Record<string, unknown> | undefined) =>
    run(q, answer).length === 0;

  it.each([
    ['=', 5, 5, 4],
    ['!=', 5, 4, 5],
    ['>', 5, 6, 5],
    ['<', 5, 4, 5],
    ['>=', 5, 5, 4],
    ['<=', 5, 5, 6],
  ] as const)('integer %s %d: enabled by %d, disabled by %d', (operator, expected, on, off) => {
    const q = gated({ question: 'q', operator, answerInteger: expected });
    expect(enabled(q, { valueInteger: on })).toBe(true);
    const issues = run(q, { valueInteger: off });
    expect(only(issues).expression).toBe('QuestionnaireResponse.item[1]');
    expect(only(issues).text).toContain('not enabled');
  });

  it('exists true/false', () => {
    const yes = gated({ question: 'q', operator: 'exists', answerBoolean: true });
    expect(enabled(yes, { valueInteger: 1 })).toBe(true);
    expect(enabled(yes, undefined)).toBe(false);
    const no = gated({ question: 'q', operator: 'exists', answerBoolean: false });
    expect(enabled(no, undefined)).toBe(true);
    expect(enabled(no, { valueInteger: 1 })).toBe(false);
  });

  it('an unanswered question does not enable through !=', () => {
    expect(enabled(gated({ question: 'q', operator: '!=', answerInteger: 1 }), undefined)).toBe(false);
  });

  it('compares codings, strings, dates, decimals, booleans and quantities', () => {
    expect(
      enabled(
        gated({ question: 'q', operator: '=', answerCoding: { system: S, code: 'a' } }, 'choice'),
        coding('a'),
      ),
    ).toBe(true);
    expect(
      enabled(
        gated({ question: 'q', operator: '=', answerCoding: { system: S, code: 'a' } }, 'choice'),
        coding('b'),
      ),
    ).toBe(false);
    expect(
      enabled(gated({ question: 'q', operator: '=', answerString: 'x' }, 'string'), { valueString: 'x' }),
    ).toBe(true);
    expect(
      enabled(gated({ question: 'q', operator: '>', answerDate: '2024-01-01' }, 'date'), {
        valueDate: '2024-06-01',
      }),
    ).toBe(true);
    expect(
      enabled(gated({ question: 'q', operator: '>', answerDate: '2024-01-01' }, 'date'), {
        valueDate: '2023-06-01',
      }),
    ).toBe(false);
    expect(
      enabled(gated({ question: 'q', operator: '<=', answerDecimal: 1.5 }, 'decimal'), { valueDecimal: 1.5 }),
    ).toBe(true);
    expect(
      enabled(gated({ question: 'q', operator: '=', answerBoolean: true }, 'boolean'), {
        valueBoolean: false,
      }),
    ).toBe(false);
    expect(
      enabled(
        gated({ question: 'q', operator: '>', answerQuantity: { value: 80, code: 'kg' } }, 'quantity'),
        { valueQuantity: { value: 90, code: 'kg' } },
      ),
    ).toBe(true);
  });

  it('enableBehavior all needs every condition, any needs one', () => {
    const make = (behavior: 'all' | 'any') =>
      questionnaire([
        { linkId: 'a', type: 'boolean' },
        { linkId: 'b', type: 'boolean' },
        {
          linkId: 't',
          type: 'string',
          enableBehavior: behavior,
          enableWhen: [
            { question: 'a', operator: '=', answerBoolean: true },
            { question: 'b', operator: '=', answerBoolean: true },
          ],
        },
      ]);
    const items = [
      { linkId: 'a', answer: [{ valueBoolean: true }] },
      { linkId: 'b', answer: [{ valueBoolean: false }] },
      { linkId: 't', answer: [{ valueString: 'x' }] },
    ];
    expect(check(make('any'), items)).toEqual([]);
    expect(only(check(make('all'), items)).expression).toBe('QuestionnaireResponse.item[2]');
  });

  it('a question that is itself disabled counts as unanswered', () => {
    const q = questionnaire([
      { linkId: 'a', type: 'boolean' },
      { linkId: 'b', type: 'boolean', enableWhen: [{ question: 'a', operator: '=', answerBoolean: true }] },
      {
        linkId: 'c',
        type: 'string',
        enableWhen: [{ question: 'b', operator: 'exists', answerBoolean: true }],
      },
    ]);
    const issues = check(q, [
      { linkId: 'a', answer: [{ valueBoolean: false }] },
      { linkId: 'b', answer: [{ valueBoolean: true }] },
      { linkId: 'c', answer: [{ valueString: 'x' }] },
    ]);
    expect(issues.map((i) => i.expression?.[0])).toEqual([
      'QuestionnaireResponse.item[1]',
      'QuestionnaireResponse.item[2]',
    ]);
  });

  it('within a repeating group, enableWhen looks at the same group instance', () => {
    const q = questionnaire([
      {
        linkId: 'g',
        type: 'group',
        repeats: true,
        item: [
          { linkId: 'flag', type: 'boolean' },
          {
            linkId: 'detail',
            type: 'string',
            enableWhen: [{ question: 'flag', operator: '=', answerBoolean: true }],
          },
        ],
      },
    ]);
    const instance = (flag: boolean, detail?: string) => ({
      linkId: 'g',
      item: [
        { linkId: 'flag', answer: [{ valueBoolean: flag }] },
        ...(detail ? [{ linkId: 'detail', answer: [{ valueString: detail }] }] : []),
      ],
    });
    expect(check(q, [instance(true, 'x'), instance(false)])).toEqual([]);
    expect(only(check(q, [instance(true), instance(false, 'x')])).expression).toBe(
      'QuestionnaireResponse.item[1].item[1]',
    );
  });
});

describe('no answers on disabled items', () => {
  const q = questionnaire([
    { linkId: 'a', type: 'boolean' },
    {
      linkId: 'g',
      type: 'group',
      enableWhen: [{ question: 'a', operator: '=', answerBoolean: true }],
      item: [{ linkId: 'x', type: 'string' }],
    },
  ]);
  it('accepts answers inside an enabled group', () => {
    expect(
      check(q, [
        { linkId: 'a', answer: [{ valueBoolean: true }] },
        { linkId: 'g', item: [{ linkId: 'x', answer: [{ valueString: 'x' }] }] },
      ]),
    ).toEqual([]);
  });
  it('refuses answers inside a disabled group', () => {
    const issues = check(q, [
      { linkId: 'a', answer: [{ valueBoolean: false }] },
      { linkId: 'g', item: [{ linkId: 'x', answer: [{ valueString: 'x' }] }] },
    ]);
    expect(only(issues).expression).toBe('QuestionnaireResponse.item[1]');
  });
});

describe('answerOption membership', () => {
  it('coding: system and code must match an option', () => {
    const q = questionnaire([
      {
        linkId: 'x',
        type: 'choice',
        answerOption: [{ valueCoding: { system: S, code: 'a' } }, { valueCoding: { system: S, code: 'b' } }],
      },
    ]);
    expect(check(q, [{ linkId: 'x', answer: [coding('b')] }])).toEqual([]);
    const { expression, text } = only(check(q, [{ linkId: 'x', answer: [coding('c')] }]));
    expect(expression).toBe('QuestionnaireResponse.item[0].answer[0]');
    expect(text).toContain('permitted: a, b');
    expect(check(q, [{ linkId: 'x', answer: [coding('a', 'http://other')] }])).toHaveLength(1);
  });
  it.each([
    ['integer', [{ valueInteger: 1 }, { valueInteger: 2 }], { valueInteger: 2 }, { valueInteger: 3 }],
    [
      'string',
      [{ valueString: 'ja' }, { valueString: 'nei' }],
      { valueString: 'nei' },
      { valueString: 'kanskje' },
    ],
    ['date', [{ valueDate: '2024-01-01' }], { valueDate: '2024-01-01' }, { valueDate: '2024-01-02' }],
    ['time', [{ valueTime: '08:00:00' }], { valueTime: '08:00:00' }, { valueTime: '09:00:00' }],
  ] as const)('%s options', (_kind, options, good, bad) => {
    const q = questionnaire([{ linkId: 'x', type: 'choice', answerOption: [...options] }]);
    expect(check(q, [{ linkId: 'x', answer: [good] }])).toEqual([]);
    expect(only(check(q, [{ linkId: 'x', answer: [bad] }])).text).toContain(
      'not one of the permitted answers',
    );
  });
  it('open-choice takes free text but not an unknown coding', () => {
    const q = questionnaire([
      { linkId: 'x', type: 'open-choice', answerOption: [{ valueCoding: { system: S, code: 'a' } }] },
    ]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueString: 'noe annet' }] }])).toEqual([]);
    expect(check(q, [{ linkId: 'x', answer: [coding('zz')] }])).toHaveLength(1);
  });
  it('a contained ValueSet that includes a whole code system checks the system', () => {
    const q = questionnaire([{ linkId: 'x', type: 'choice', answerValueSet: '#vs' }], {
      contained: [
        {
          resourceType: 'ValueSet',
          id: 'vs',
          status: 'active',
          compose: { include: [{ system: 'urn:icd10' }] },
        },
      ],
    });
    expect(check(q, [{ linkId: 'x', answer: [coding('M79.7', 'urn:icd10')] }])).toEqual([]);
    expect(check(q, [{ linkId: 'x', answer: [coding('M79.7', 'urn:other')] }])).toHaveLength(1);
  });
});

describe('value constraints', () => {
  const ext = (name: string, value: Record<string, unknown>) => ({
    url: `http://hl7.org/fhir/StructureDefinition/${name}`,
    ...value,
  });
  it('minValue and maxValue on integers', () => {
    const q = questionnaire([
      {
        linkId: 'x',
        type: 'integer',
        extension: [ext('minValue', { valueInteger: 0 }), ext('maxValue', { valueInteger: 10 })],
      },
    ]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueInteger: 10 }] }])).toEqual([]);
    expect(only(check(q, [{ linkId: 'x', answer: [{ valueInteger: 11 }] }])).text).toContain(
      'above the allowed 10',
    );
    expect(only(check(q, [{ linkId: 'x', answer: [{ valueInteger: -1 }] }])).text).toContain(
      'below the allowed 0',
    );
  });
  it('minValue and maxValue on dates', () => {
    const q = questionnaire([
      { linkId: 'x', type: 'date', extension: [ext('maxValue', { valueDate: '2025-12-31' })] },
    ]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueDate: '2025-12-31' }] }])).toEqual([]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueDate: '2026-01-01' }] }])).toHaveLength(1);
  });
  it('maxLength', () => {
    const q = questionnaire([{ linkId: 'x', type: 'string', maxLength: 3 }]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueString: 'æøå' }] }])).toEqual([]);
    expect(only(check(q, [{ linkId: 'x', answer: [{ valueString: 'abcd' }] }])).text).toContain('at most 3');
  });
  it('minLength and regex', () => {
    const q = questionnaire([
      {
        linkId: 'x',
        type: 'string',
        extension: [ext('minLength', { valueInteger: 2 }), ext('regex', { valueString: '[A-Z]+' })],
      },
    ]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueString: 'AB' }] }])).toEqual([]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueString: 'a' }] }])).toHaveLength(2);
  });
  it('maxDecimalPlaces', () => {
    const q = questionnaire([
      { linkId: 'x', type: 'decimal', extension: [ext('maxDecimalPlaces', { valueInteger: 1 })] },
    ]);
    expect(check(q, [{ linkId: 'x', answer: [{ valueDecimal: 2.5 }] }])).toEqual([]);
    expect(only(check(q, [{ linkId: 'x', answer: [{ valueDecimal: 2.55 }] }])).text).toContain(
      '2 decimal places',
    );
  });
});

describe('groups and display items carry no answers; nested items under answers', () => {
  it('refuses an answer on a group', () => {
    const q = questionnaire([{ linkId: 'g', type: 'group', item: [{ linkId: 'a', type: 'string' }] }]);
    expect(check(q, [{ linkId: 'g', item: [{ linkId: 'a', answer: [{ valueString: 'x' }] }] }])).toEqual([]);
    expect(only(check(q, [{ linkId: 'g', answer: [{ valueString: 'x' }] }])).expression).toBe(
      'QuestionnaireResponse.item[0].answer[0]',
    );
  });
  it('refuses an answer on a display item', () => {
    const q = questionnaire([{ linkId: 'd', type: 'display', text: 'info' }]);
    expect(check(q, [{ linkId: 'd' }])).toEqual([]);
    expect(only(check(q, [{ linkId: 'd', answer: [{ valueString: 'x' }] }])).text).toContain('Display item');
  });
  it('takes items nested in a question under its answer, not under the item', () => {
    const q = questionnaire([
      { linkId: 'q', type: 'boolean', item: [{ linkId: 'sub', type: 'string', required: true }] },
    ]);
    expect(
      check(q, [
        {
          linkId: 'q',
          answer: [{ valueBoolean: true, item: [{ linkId: 'sub', answer: [{ valueString: 'x' }] }] }],
        },
      ]),
    ).toEqual([]);
    const issues = check(q, [
      {
        linkId: 'q',
        item: [{ linkId: 'sub', answer: [{ valueString: 'x' }] }],
        answer: [{ valueBoolean: true }],
      },
    ]);
    expect(issues[0].expression?.[0]).toBe('QuestionnaireResponse.item[0].item[0]');
    expect(issues[0].details?.text).toContain('belong under its answer');
    // and the nested required item is checked per answer
    expect(issues[1].expression?.[0]).toBe('QuestionnaireResponse.item[0].answer[0]');
  });
});

describe('the Questionnaire itself', () => {
  it('reports enableWhen naming a missing question and unparsable expressions', () => {
    const compiled = compileQuestionnaire(
      questionnaire([
        {
          linkId: 'a',
          type: 'string',
          enableWhen: [{ question: 'nope', operator: 'exists', answerBoolean: true }],
        },
        {
          linkId: 'b',
          type: 'integer',
          extension: [
            {
              url: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression',
              valueExpression: { language: 'text/fhirpath', expression: 'item.where(' },
            },
          ],
        },
      ]),
    );
    expect(compiled.issues.map((i) => i.expression?.[0])).toEqual([
      'Questionnaire.item[1].extension',
      'Questionnaire.item[0].enableWhen[0].question',
    ]);
  });
});
