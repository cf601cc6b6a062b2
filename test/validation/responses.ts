import type {
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';

export type Overrides = Record<string, QuestionnaireResponseItemAnswer[] | null>;

/**
 * Fills in a Questionnaire as a person would with plausible answers: every question without enableWhen
 * gets a default answer (the n-th option, the middle of a range, `false` for yes/no so dependants stay
 * off); items with enableWhen are answered only when `overrides` names them; calculated items are left
 * for the server. `null` in overrides leaves an item out.
 */
export function fillResponse(q: Questionnaire, overrides: Overrides = {}, seed = 1): QuestionnaireResponse {
  const items = fillItems(q.item ?? [], overrides, seed);
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${q.url}|${q.version}`,
    status: 'completed',
    authored: '2025-03-01T10:00:00+01:00',
    subject: { reference: 'Patient/p1' },
    item: items,
  };
}

function fillItems(
  items: QuestionnaireItem[],
  overrides: Overrides,
  seed: number,
): QuestionnaireResponseItem[] {
  const result: QuestionnaireResponseItem[] = [];
  items.forEach((item, i) => {
    const override = overrides[item.linkId];
    if (override === null || item.readOnly || item.type === 'display') {
      return;
    }
    if (item.type === 'group') {
      const children = fillItems(item.item ?? [], overrides, seed);
      if (children.length) {
        result.push({ linkId: item.linkId, text: item.text, item: children });
      }
      return;
    }
    if (item.enableWhen && !override) {
      return;
    }
    const answer = override ?? defaultAnswer(item, seed + i);
    if (answer.length) {
      result.push({ linkId: item.linkId, text: item.text, answer });
    }
  });
  return result;
}

function defaultAnswer(item: QuestionnaireItem, n: number): QuestionnaireResponseItemAnswer[] {
  const ext = (suffix: string): number | undefined =>
    item.extension?.find((e) => e.url.endsWith(suffix))?.valueInteger;
  switch (item.type) {
    case 'choice':
    case 'open-choice': {
      const options = item.answerOption ?? [];
      if (!options.length) {
        return [{ valueCoding: { system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' } }];
      }
      const option = options[n % options.length];
      return [{ valueCoding: option.valueCoding }];
    }
    case 'integer': {
      const min = ext('/minValue') ?? 0;
      const max = ext('/maxValue') ?? 10;
      return [{ valueInteger: Math.min(max, min + ((n * 7) % (max - min + 1))) }];
    }
    case 'decimal':
      return [{ valueDecimal: 1.5 }];
    case 'boolean':
      return [{ valueBoolean: false }];
    case 'date':
      return [{ valueDate: '2024-03-01' }];
    case 'dateTime':
      return [{ valueDateTime: '2024-03-01T10:00:00+01:00' }];
    case 'string':
    case 'text':
      return [{ valueString: 'tekst' }];
    default:
      return [];
  }
}

/** The answers of `linkId` anywhere in the response. */
export function answersOf(qr: QuestionnaireResponse, linkId: string): QuestionnaireResponseItemAnswer[] {
  const found: QuestionnaireResponseItemAnswer[] = [];
  const walk = (items: QuestionnaireResponseItem[] | undefined): void => {
    for (const item of items ?? []) {
      if (item.linkId === linkId) {
        found.push(...(item.answer ?? []));
      }
      walk(item.item);
      item.answer?.forEach((a) => walk(a.item));
    }
  };
  walk(qr.item);
  return found;
}
