/**
 * Building blocks for the NorPain Questionnaires: answer scales as local CodeSystems whose codes are the
 * scores themselves (so FHIRPath scoring reads `code.toInteger()` in every renderer), and SDC
 * calculatedExpressions that carry each instrument's missing-item rule, over SDC variables declared on
 * the instrument's group.
 */
import type { Coding, Extension, QuestionnaireItem, QuestionnaireItemAnswerOption } from '@medplum/fhirtypes';

export const BASE = 'https://norpain.no/fhir';
export const cs = (name: string): string => `${BASE}/CodeSystem/${name}`;
export const LOINC = 'http://loinc.org';

const ITEM_CONTROL = 'http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl';
const ORDINAL = 'http://hl7.org/fhir/StructureDefinition/ordinalValue';
const CALCULATED = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';
const MIN = 'http://hl7.org/fhir/StructureDefinition/minValue';
const MAX = 'http://hl7.org/fhir/StructureDefinition/maxValue';
const DECIMALS = 'http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces';
const UNIT = 'http://hl7.org/fhir/StructureDefinition/questionnaire-unit';
const ENTRY_FORMAT = 'http://hl7.org/fhir/StructureDefinition/entryFormat';
const VARIABLE = 'http://hl7.org/fhir/StructureDefinition/variable';
const HIDDEN = 'http://hl7.org/fhir/StructureDefinition/questionnaire-hidden';
const OPTION_EXCLUSIVE = 'http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive';

/** HL7 v2 table 0136 (Yes/no indicator): the standard yes/no codes, shown to the patient in bokmål. */
export const YES_NO = 'http://terminology.hl7.org/CodeSystem/v2-0136';

/** Marks placeholder text of a licensed instrument (reference §5: real wording is loaded at deployment). */
export const PLACEHOLDER = '[Plassholder – lisensiert ordlyd lastes ved utrulling]';
/**
 * The short mark on each question and answer of a licensed instrument; the instrument's introduction
 * carries the full {@link PLACEHOLDER} notice once, so the form stays readable while it is a placeholder.
 */
export const PLACEHOLDER_MARK = '[Plassholder]';

/** An answer option: code and bokmål display; `exclusive` for «none of these» in a check box list. */
export type Option = [code: string, display: string, flag?: 'exclusive'];

export function options(system: string, list: Option[], ordinal = false): QuestionnaireItemAnswerOption[] {
  return list.map(([code, display, flag]) => {
    const valueCoding: Coding = { system, code, display };
    const extension: Extension[] = [];
    if (ordinal) {
      extension.push({ url: ORDINAL, valueDecimal: Number(code) });
    }
    if (flag === 'exclusive') {
      extension.push({ url: OPTION_EXCLUSIVE, valueBoolean: true });
    }
    return extension.length ? { valueCoding, extension } : { valueCoding };
  });
}

function control(code: 'radio-button' | 'check-box' | 'drop-down' | 'slider'): Extension {
  return {
    url: ITEM_CONTROL,
    valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/questionnaire-item-control', code }] },
  };
}

type Extra = Partial<QuestionnaireItem>;

export function choice(
  linkId: string,
  text: string,
  system: string,
  list: Option[],
  extra: Extra = {},
): QuestionnaireItem {
  const ordinal = list.every(([code]) => /^\d+$/.test(code));
  return {
    linkId,
    text,
    type: 'choice',
    extension: [control(extra.repeats ? 'check-box' : 'radio-button')],
    answerOption: options(system, list, ordinal),
    ...extra,
  };
}

/** A UCUM unit; `display` is what renderers show next to the field (LHC-Forms does), in bokmål. */
export interface Unit {
  code: string;
  display?: string;
}

export function integer(
  linkId: string,
  text: string,
  min: number,
  max: number,
  extra: Extra = {},
  unit?: Unit,
): QuestionnaireItem {
  const extension: Extension[] = [
    { url: MIN, valueInteger: min },
    { url: MAX, valueInteger: max },
    // The empty field's placeholder: the allowed range, instead of a renderer's own (English) hint.
    { url: ENTRY_FORMAT, valueString: `${min}–${max}` },
  ];
  if (unit) {
    extension.push({
      url: UNIT,
      valueCoding: {
        system: 'http://unitsofmeasure.org',
        code: unit.code,
        display: unit.display ?? unit.code,
      },
    });
  }
  return { linkId, text, type: 'integer', extension, ...extra };
}

/**
 * A yes/no question the clinician's system answers (EPR systems send booleans). Patient forms use
 * {@link yesNo}: the portal's renderer shows a boolean as a single check box, so «nei» cannot be given.
 */
export function bool(linkId: string, text: string, extra: Extra = {}): QuestionnaireItem {
  return { linkId, text, type: 'boolean', ...extra };
}

/** A yes/no question for a patient: Ja/Nei radio buttons (v2-0136 Y/N), so both answers can be given. */
export function yesNo(linkId: string, text: string, extra: Extra = {}): QuestionnaireItem {
  return choice(
    linkId,
    text,
    YES_NO,
    [
      ['Y', 'Ja'],
      ['N', 'Nei'],
    ],
    extra,
  );
}

/** enableWhen: the yes/no question `question` ({@link yesNo}) was answered «Ja». */
export function whenYes(question: string): Extra {
  return when(question, { answerCoding: { system: YES_NO, code: 'Y' } });
}

export function date(linkId: string, text: string, extra: Extra = {}): QuestionnaireItem {
  return {
    linkId,
    text,
    type: 'date',
    extension: [{ url: ENTRY_FORMAT, valueString: 'dd.mm.åååå' }],
    ...extra,
  };
}

export function display(linkId: string, text: string): QuestionnaireItem {
  return { linkId, text, type: 'display' };
}

export function group(
  linkId: string,
  text: string,
  item: QuestionnaireItem[],
  extra: Extra = {},
): QuestionnaireItem {
  return { linkId, text, type: 'group', ...extra, item };
}

export function when(
  question: string,
  answer: Partial<NonNullable<QuestionnaireItem['enableWhen']>[number]>,
  operator: '=' | '!=' | 'exists' = '=',
): Extra {
  return { enableWhen: [{ question, operator, ...answer }] };
}

/**
 * A read-only score item computed by FHIRPath; `type` integer or decimal (then rounded to `places`).
 * Hidden from the person filling in the form: the server computes the scores on ingest, and renderers
 * that do not evaluate calculatedExpression (the portal's Refero) would show each score as unanswered.
 */
export function score(
  linkId: string,
  text: string,
  type: 'integer' | 'decimal' | 'boolean' | 'date',
  expression: string,
  description: string,
  places?: number,
  code?: Coding,
): QuestionnaireItem {
  const extension: Extension[] = [
    {
      url: CALCULATED,
      valueExpression: { description, language: 'text/fhirpath', expression },
    },
    { url: HIDDEN, valueBoolean: true },
  ];
  if (places !== undefined) {
    extension.push({ url: DECIMALS, valueInteger: places });
  }
  return { linkId, text, type, readOnly: true, extension, ...(code ? { code: [code] } : {}) };
}

/** An SDC variable: a named FHIRPath expression in scope for the item that declares it and the items below. */
export function variable(name: string, expression: string): Extension {
  return { url: VARIABLE, valueExpression: { name, language: 'text/fhirpath', expression } };
}

/**
 * SDC variables, declared on an instrument's group, for the item scores of the items `linkIds` of that
 * group: `%{name}Ledd` lists the linkIds (a constant, evaluated once) and `%{name}` holds the numeric
 * answers, from the answer codes (`code`, the scales' codes are the item scores) or from integer answers
 * (`value`). Score expressions then work on `%{name}` alone, so each instrument's items are read once
 * per response, and membership is tested against a variable rather than a literal `|` union (which
 * FHIRPath engines rebuild for every item).
 */
export function itemScores(name: string, linkIds: string[], from: 'code' | 'value' = 'code'): Extension[] {
  const value = from === 'code' ? 'answer.value.code.select(toInteger())' : 'answer.value';
  return [
    variable(`${name}Ledd`, `(${linkIds.map((id) => `'${id}'`).join(' | ')})`),
    variable(name, `item.where(linkId in %${name}Ledd).${value}`),
  ];
}

/** The linkIds `prefix-N` for N in `numbers`. */
export const numbered = (prefix: string, numbers: number[]): string[] => numbers.map((n) => `${prefix}-${n}`);

/**
 * Sum of the item scores in variable `name` (of `count` items) when at least `min` are answered,
 * prorated to the full item count when some are missing.
 */
export function proratedSum(name: string, count: number, min: number): string {
  if (min >= count) {
    return `iif(%${name}.count() = ${count}, %${name}.sum())`;
  }
  return `iif(%${name}.count() >= ${min}, (%${name}.sum() * ${count} / %${name}.count()).round(0))`;
}

/** Mean of the answered item scores in variable `name` when at least `min` are answered. */
export function mean(name: string, min: number, places = 2): string {
  return `iif(%${name}.count() >= ${min}, %${name}.avg().round(${places}))`;
}

export const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
