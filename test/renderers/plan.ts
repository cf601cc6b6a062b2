import type { Questionnaire, QuestionnaireItem } from '@medplum/fhirtypes';

/**
 * What a person enters for one question: option codes (radio buttons or check boxes; yes/no questions
 * are Ja/Nei options too) or a number.
 */
export type PlannedAnswer = { kind: 'coding'; codes: string[] } | { kind: 'integer'; value: number };

export interface PlannedItem {
  item: QuestionnaireItem;
  answer: PlannedAnswer;
}

const SDC_CALCULATED =
  'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';

/** The read-only score items the server computes (SDC calculatedExpression). */
export function scoreItems(questionnaire: Questionnaire): QuestionnaireItem[] {
  return flatten(questionnaire.item ?? []).filter((i) => i.extension?.some((e) => e.url === SDC_CALCULATED));
}

export function flatten(items: QuestionnaireItem[]): QuestionnaireItem[] {
  return items.flatMap((i) => [i, ...flatten(i.item ?? [])]);
}

/**
 * One completed form, as a person would fill it in: every question that is enabled gets an answer.
 * Branching questions get the answers in `choices` (which also decide which dependants are shown: an
 * item with enableWhen is answered only when `choices` names it, so the plan never answers a question
 * the renderer hides). Every other question gets a varied but deterministic answer, so a score's
 * expected value can be computed here independently of the server.
 */
export function planAnswers(
  questionnaire: Questionnaire,
  choices: Record<string, PlannedAnswer>,
): PlannedItem[] {
  const plan: PlannedItem[] = [];
  let n = 0;
  for (const item of flatten(questionnaire.item ?? [])) {
    if (item.type === 'group' || item.type === 'display' || item.readOnly) {
      continue;
    }
    n += 1;
    const chosen = choices[item.linkId];
    if (chosen?.kind === 'coding') {
      const offered = (item.answerOption ?? []).map((o) => o.valueCoding?.code);
      const foreign = chosen.codes.filter((c) => !offered.includes(c));
      if (foreign.length) {
        throw new Error(`'${item.linkId}' offers no option ${foreign.join(', ')}`);
      }
    }
    if (chosen) {
      plan.push({ item, answer: chosen });
    } else if (!item.enableWhen?.length) {
      plan.push({ item, answer: defaultAnswer(item, n) });
    }
  }
  const unknown = Object.keys(choices).filter((linkId) => !plan.some((p) => p.item.linkId === linkId));
  if (unknown.length) {
    throw new Error(`The plan names items the Questionnaire does not have: ${unknown.join(', ')}`);
  }
  return plan;
}

function defaultAnswer(item: QuestionnaireItem, n: number): PlannedAnswer {
  switch (item.type) {
    case 'choice': {
      const codes = (item.answerOption ?? []).map((o) => o.valueCoding?.code).filter((c) => c !== undefined);
      if (!codes.length) {
        throw new Error(`No coded answerOption on '${item.linkId}'`);
      }
      return { kind: 'coding', codes: [codes[(n * 3 + 1) % codes.length]] };
    }
    case 'integer': {
      const min = extensionInteger(item, 'minValue') ?? 0;
      const max = extensionInteger(item, 'maxValue') ?? 10;
      return { kind: 'integer', value: min + ((n * 7 + 2) % (max - min + 1)) };
    }
    default:
      throw new Error(`The plan has no default answer for '${item.linkId}' of type ${item.type}`);
  }
}

function extensionInteger(item: QuestionnaireItem, name: string): number | undefined {
  return item.extension?.find((e) => e.url === `http://hl7.org/fhir/StructureDefinition/${name}`)
    ?.valueInteger;
}

/** The planned answer of an item (throws when the plan has none, so expectations stay honest). */
export function planned(plan: PlannedItem[], linkId: string): PlannedAnswer {
  const found = plan.find((p) => p.item.linkId === linkId);
  if (!found) {
    throw new Error(`The plan does not answer '${linkId}'`);
  }
  return found.answer;
}

export function plannedNumber(plan: PlannedItem[], linkId: string): number {
  const a = planned(plan, linkId);
  if (a.kind === 'integer') {
    return a.value;
  }
  if (a.kind === 'coding' && a.codes.length === 1 && /^\d+$/.test(a.codes[0])) {
    return Number(a.codes[0]);
  }
  throw new Error(`'${linkId}' has no numeric planned answer`);
}

/** Sum of the planned (numeric) answers of the items. */
export function plannedSum(plan: PlannedItem[], linkIds: string[]): number {
  return linkIds.reduce((sum, id) => sum + plannedNumber(plan, id), 0);
}

export function range(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
}
