import type { Questionnaire, QuestionnaireItem, QuestionnaireResponseItemAnswer } from '@medplum/fhirtypes';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { fillResponse, type Overrides } from '../validation/responses';
import type { Case } from './corpus';

/**
 * Cases over the NorPain Questionnaires themselves, as an EPR or the portal would send them: complete
 * responses with different answers, and for each question other answers its type and constraints allow
 * (another option, a score at its maximum, as many decimal places as allowed) and ones they do not (an
 * answer that is no option, a score out of range, one decimal place too many, a value of the wrong type,
 * a required question left out).
 */
export function generatedCases(): Case[] {
  return readNorPainQuestionnaires().flatMap(casesFor);
}

function casesFor(q: Questionnaire): Case[] {
  const name = q.url?.split('/').pop() ?? '';
  const cases: Case[] = [1, 2, 3, 4].map((seed) => ({
    check: 'valid',
    name: `${name}: completed (answers ${seed})`,
    response: fillResponse(q, {}, seed),
  }));
  for (const item of questions(q.item ?? [])) {
    for (const variant of variants(item)) {
      cases.push({
        check: variant.check,
        name: `${name}: ${item.linkId} ${variant.what}`,
        response: fillResponse(q, { [item.linkId]: variant.answer } as Overrides),
        ...(variant.known ? { known: variant.known } : {}),
      });
    }
    if (item.required) {
      cases.push({
        check: 'required',
        name: `${name}: ${item.linkId} left out`,
        response: fillResponse(q, { [item.linkId]: null }),
      });
    }
  }
  return cases;
}

/** The questions a filled-in response answers: not groups, display or calculated items, none behind enableWhen. */
function questions(items: QuestionnaireItem[]): QuestionnaireItem[] {
  return items.flatMap((item) => {
    if (item.type === 'group') {
      return item.enableWhen ? [] : questions(item.item ?? []);
    }
    return item.type === 'display' || item.readOnly || item.enableWhen ? [] : [item];
  });
}

interface Variant {
  check: string;
  what: string;
  answer: QuestionnaireResponseItemAnswer[];
  known?: Case['known'];
}

/** Other answers to a question than the default fill: ones its type and constraints allow, and ones they do not. */
function variants(item: QuestionnaireItem): Variant[] {
  const ext = (suffix: string) => item.extension?.find((e) => e.url.endsWith(suffix));
  switch (item.type) {
    case 'choice': {
      const options = item.answerOption ?? [];
      const last = options[options.length - 1]?.valueCoding;
      if (last) {
        return [
          { check: 'options', what: 'with its last option', answer: [{ valueCoding: last }] },
          {
            check: 'options',
            what: 'with a code that is no option',
            answer: [{ valueCoding: { ...last, code: `${last.code ?? ''}-x`, display: undefined } }],
          },
        ];
      }
      return item.answerValueSet?.startsWith('#')
        ? [
            {
              check: 'options',
              what: 'with a code from a system its ValueSet does not include',
              answer: [{ valueCoding: { system: 'http://example.org/codes', code: 'M79.7' } }],
              known: 'containedValueSetCrash',
            },
          ]
        : [];
    }
    case 'integer': {
      const min = ext('/minValue')?.valueInteger;
      const max = ext('/maxValue')?.valueInteger;
      if (min === undefined || max === undefined) {
        return [{ check: 'type', what: 'as a string', answer: [{ valueString: '3' }] }];
      }
      return [
        { check: 'min/max', what: `at its maximum ${max}`, answer: [{ valueInteger: max }] },
        { check: 'min/max', what: `at ${max + 1}, above its maximum`, answer: [{ valueInteger: max + 1 }] },
        { check: 'min/max', what: `at ${min - 1}, below its minimum`, answer: [{ valueInteger: min - 1 }] },
      ];
    }
    case 'decimal': {
      const places = ext('/maxDecimalPlaces')?.valueInteger;
      if (places === undefined) {
        return [{ check: 'type', what: 'as an integer', answer: [{ valueInteger: 3 }] }];
      }
      return [places, places + 1].map((n) => ({
        check: 'decimals',
        what: `with ${n} decimal places`,
        answer: [{ valueDecimal: Number(`1.${'1'.repeat(n)}`) }],
      }));
    }
    case 'boolean':
      return [
        { check: 'enableWhen', what: 'answered yes', answer: [{ valueBoolean: true }] },
        { check: 'type', what: 'as a string', answer: [{ valueString: 'ja' }] },
      ];
    case 'date':
      return [
        { check: 'min/max', what: 'on another date', answer: [{ valueDate: '2023-11-30' }] },
        { check: 'type', what: 'as a dateTime', answer: [{ valueDateTime: '2024-03-01T10:00:00+01:00' }] },
      ];
    default:
      return [];
  }
}
