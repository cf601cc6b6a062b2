import type {
  Coding,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
} from '@medplum/fhirtypes';
import { isFhirError, type FhirError } from '../../src/fhir/outcomes';
import { questionnaireStage, repeatedAnswersStage } from '../../src/ingest/questionnaire-stage';
import { validateBase } from '../../src/ingest/validate';
import type { IngestContext, Write } from '../../src/ingest/write';
import {
  compileQuestionnaire,
  listQuestionnaireSource,
  mergeRepeatedAnswers,
  QuestionnaireRegistry,
  readNorPainQuestionnaires,
  validateQuestionnaireResponse,
} from '../../src/validation/questionnaire';
import { answersOf, fillResponse } from './responses';

/**
 * helsenorge Refero's «Legg til» under a multi-select question sends the question as sibling items with
 * the same linkId. The server joins them into one item before validating (issue 5); a question that
 * does not repeat, and a group, stay refused.
 */

const S = 'http://example.org/cs';
const coding = (code: string) => ({ valueCoding: { system: S, code } });
const options = ['a', 'b', 'c', 'none'].map((code) => ({
  valueCoding: { system: S, code },
  ...(code === 'none'
    ? {
        extension: [
          {
            url: 'http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive',
            valueBoolean: true,
          },
        ],
      }
    : {}),
}));

function questionnaire(item: QuestionnaireItem[]): Questionnaire {
  return { resourceType: 'Questionnaire', url: 'http://example.org/q', version: '1', status: 'active', item };
}

const form = questionnaire([
  {
    linkId: 'g',
    type: 'group',
    item: [
      {
        linkId: 'where',
        text: 'Where?',
        type: 'choice',
        repeats: true,
        answerOption: options,
        item: [{ linkId: 'how-bad', type: 'integer' }],
      },
      { linkId: 'one', type: 'choice', answerOption: options },
    ],
  },
  { linkId: 'rg', type: 'group', repeats: true, item: [{ linkId: 'x', type: 'string' }] },
]);
const compiled = compileQuestionnaire(form);

function response(item: QuestionnaireResponseItem[]): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: 'http://example.org/q|1',
    status: 'completed',
    item,
  };
}

function inGroup(...items: QuestionnaireResponseItem[]): QuestionnaireResponse {
  return response([{ linkId: 'g', item: items }]);
}

describe('mergeRepeatedAnswers', () => {
  it('joins the copies of a repeating question into the first, answers in order', () => {
    const split = inGroup(
      { linkId: 'where', text: 'Where?', answer: [coding('a'), coding('b')] },
      { linkId: 'where', text: 'Where?', answer: [coding('c')] },
      { linkId: 'one', answer: [coding('a')] },
    );
    const merged = mergeRepeatedAnswers(compiled, split);
    expect(merged.item?.[0].item).toEqual([
      { linkId: 'where', text: 'Where?', answer: [coding('a'), coding('b'), coding('c')] },
      { linkId: 'one', answer: [coding('a')] },
    ]);
    expect(validateQuestionnaireResponse(compiled, merged)).toEqual([]);
    // The input is not modified, and the split form is what the validator alone refuses.
    expect(split.item?.[0].item).toHaveLength(3);
    expect(validateQuestionnaireResponse(compiled, split).map((i) => i.details?.text)).toEqual([
      expect.stringContaining('appears more than once'),
    ]);
  });

  it('drops exact duplicate answers and copies without answers', () => {
    const merged = mergeRepeatedAnswers(
      compiled,
      inGroup(
        { linkId: 'where', answer: [coding('a')] },
        { linkId: 'where' },
        { linkId: 'where', answer: [coding('a'), coding('b')] },
      ),
    );
    expect(merged.item?.[0].item).toEqual([{ linkId: 'where', answer: [coding('a'), coding('b')] }]);
  });

  it('keeps the items nested under each answer', () => {
    const nested = (code: string, n: number) => ({
      ...coding(code),
      item: [{ linkId: 'how-bad', answer: [{ valueInteger: n }] }],
    });
    const merged = mergeRepeatedAnswers(
      compiled,
      inGroup({ linkId: 'where', answer: [nested('a', 3)] }, { linkId: 'where', answer: [nested('b', 7)] }),
    );
    expect(merged.item?.[0].item).toEqual([{ linkId: 'where', answer: [nested('a', 3), nested('b', 7)] }]);
    expect(validateQuestionnaireResponse(compiled, merged)).toEqual([]);
  });

  it('leaves a duplicated non-repeating question and a duplicated group as sent', () => {
    const question = inGroup(
      { linkId: 'one', answer: [coding('a')] },
      { linkId: 'one', answer: [coding('b')] },
    );
    expect(mergeRepeatedAnswers(compiled, question)).toBe(question);
    const groups = response([
      { linkId: 'rg', item: [{ linkId: 'x', answer: [{ valueString: '1' }] }] },
      { linkId: 'rg', item: [{ linkId: 'x', answer: [{ valueString: '2' }] }] },
    ]);
    expect(mergeRepeatedAnswers(compiled, groups)).toBe(groups);
  });

  it('checks the merged set: an exclusive option in one copy and another option in the other is refused', () => {
    const merged = mergeRepeatedAnswers(
      compiled,
      inGroup({ linkId: 'where', answer: [coding('a')] }, { linkId: 'where', answer: [coding('none')] }),
    );
    const issues = validateQuestionnaireResponse(compiled, merged);
    expect(issues.map((i) => [i.expression?.[0], i.details?.text])).toEqual([
      [
        'QuestionnaireResponse.item[0].item[0].answer[1]',
        expect.stringMatching(
          /^The code 'none' .* excludes every other answer of 'where' \(Where\?\), but 1 other answer was given/,
        ),
      ],
    ]);
    // Alone, the exclusive option is fine.
    expect(
      validateQuestionnaireResponse(compiled, inGroup({ linkId: 'where', answer: [coding('none')] })),
    ).toEqual([]);
  });
});

describe('the ingest stages on a Refero response split by «Legg til»', () => {
  const norpain = readNorPainQuestionnaires();
  const baseline = norpain.find((q) => q.url?.endsWith('/norpain-baseline')) as Questionnaire;
  const registry = new QuestionnaireRegistry(listQuestionnaireSource(norpain));
  const ctx: IngestContext = {
    principal: { role: 'portal', clientId: 'portal', scopes: [] },
    requestId: 'r1',
    base: 'http://localhost/fhir',
  };
  const region = (code: string): Coding => ({
    system: 'https://norpain.no/fhir/CodeSystem/smerteregion',
    code,
  });

  /** A filled-in baseline whose `smertesteder` is sent as two items, as Refero does after «Legg til». */
  function split(first: string[], copy: string[]): QuestionnaireResponse {
    const qr = fillResponse(baseline, { smertesteder: first.map((c) => ({ valueCoding: region(c) })) });
    const group = qr.item?.find((g) => g.item?.some((i) => i.linkId === 'smertesteder'));
    const at = group?.item?.findIndex((i) => i.linkId === 'smertesteder') ?? -1;
    group?.item?.splice(at + 1, 0, {
      linkId: 'smertesteder',
      answer: copy.map((c) => ({ valueCoding: region(c) })),
    });
    return qr;
  }

  /** The stages of a write up to the Questionnaire stage, in the pipeline's order. */
  async function ingest(qr: QuestionnaireResponse): Promise<QuestionnaireResponse> {
    let write: Write = {
      transaction: false,
      entries: [{ method: 'POST', resourceType: qr.resourceType, resource: qr }],
    };
    for (const stage of [repeatedAnswersStage(registry), validateBase, questionnaireStage(registry)]) {
      write = await stage(write, ctx);
    }
    return write.entries[0].resource as QuestionnaireResponse;
  }

  async function refusal(promise: Promise<unknown>): Promise<FhirError> {
    try {
      await promise;
    } catch (err) {
      if (isFhirError(err)) return err;
      throw err;
    }
    throw new Error('expected a refusal');
  }

  it('stores one item with every answer, scored on the merged set', async () => {
    const stored = await ingest(split(['nakke', 'korsrygg'], ['mage']));
    expect(answersOf(stored, 'smertesteder').map((a) => a.valueCoding?.code)).toEqual([
      'nakke',
      'korsrygg',
      'mage',
    ]);
    expect(JSON.stringify(stored).match(/"linkId":"smertesteder"/g)).toHaveLength(1);
    expect(answersOf(stored, 'antall-smertesteder')).toEqual([{ valueInteger: 3 }]);
  });

  it('refuses «ingen smerter» in one copy and a region in the other, saying why', async () => {
    const err = await refusal(ingest(split(['nakke'], ['ingen'])));
    expect(err.status).toBe(422);
    expect(err.outcome.issue?.map((i) => i.details?.text)).toEqual([
      expect.stringMatching(/^The code 'ingen' .* excludes every other answer of .*Hvor har du hatt smerter/),
    ]);
  });

  it('still refuses a duplicated question that does not repeat', async () => {
    const qr = fillResponse(baseline);
    const group = qr.item?.find((g) => g.item?.some((i) => i.linkId === 'smertedebut'));
    const original = group?.item?.find((i) => i.linkId === 'smertedebut') as QuestionnaireResponseItem;
    group?.item?.push({ ...original });
    const err = await refusal(ingest(qr));
    expect(err.status).toBe(422);
    expect(err.outcome.issue?.map((i) => i.details?.text)).toEqual([
      expect.stringContaining("'smertedebut' appears more than once"),
    ]);
  });
});
