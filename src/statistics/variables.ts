import type { Questionnaire, QuestionnaireItem } from '@medplum/fhirtypes';
import { readNorPainQuestionnaires } from '../validation/questionnaire';

/**
 * The variables a statistic can be computed over: the numeric items of the registry's Questionnaires
 * (integers, decimals and scores; yes/no as 0/1, a share; choices whose codes are numbers, such as the
 * HSCL-25 or PGIC scales), named as an approval names them (`<Questionnaire url>#<linkId>`, the data
 * dictionary's form, see profiles/input/fsh/extensions.fsh). Free text and identifiers are not among
 * them: the registry's forms have no text questions, and a date is not a number to average.
 */

export interface Variable {
  name: string;
  /** The item's text, for the report and error messages (registry wording, no person data). */
  text: string;
}

function numericItems(questionnaire: Questionnaire, items: readonly QuestionnaireItem[]): Variable[] {
  return items.flatMap((item) => {
    const numeric =
      item.type === 'integer' ||
      item.type === 'decimal' ||
      item.type === 'boolean' ||
      (item.type === 'choice' &&
        (item.answerOption ?? []).length > 0 &&
        (item.answerOption ?? []).every((o) => /^-?\d+$/.test(o.valueCoding?.code ?? '')));
    const own = numeric
      ? [{ name: `${questionnaire.url}#${item.linkId}`, text: item.text ?? item.linkId }]
      : [];
    return [...own, ...numericItems(questionnaire, item.item ?? [])];
  });
}

let catalogue: Map<string, Variable> | undefined;

/** Every numeric variable of the registry's Questionnaires, by name. */
export function numericVariables(): ReadonlyMap<string, Variable> {
  catalogue ??= new Map(
    readNorPainQuestionnaires()
      .flatMap((q) => numericItems(q, q.item ?? []))
      .map((v) => [v.name, v]),
  );
  return catalogue;
}
