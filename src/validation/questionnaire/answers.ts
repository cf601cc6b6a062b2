import type {
  Extension,
  OperationOutcomeIssue,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireItemAnswerOption,
  QuestionnaireResponseItemAnswer,
  ValueSet,
} from '@medplum/fhirtypes';
import { parseReference } from '../../fhir/reference';
import { uriProblem } from '../uri';
import { expandValueSet } from '../valuesets';

/** The value[x] property names an answer can carry in R4. */
export type AnswerValueKey =
  | 'valueBoolean'
  | 'valueDecimal'
  | 'valueInteger'
  | 'valueDate'
  | 'valueDateTime'
  | 'valueTime'
  | 'valueString'
  | 'valueUri'
  | 'valueAttachment'
  | 'valueCoding'
  | 'valueQuantity'
  | 'valueReference';

/** Which value[x] each R4 item type takes (choice and open-choice also depend on their answerOptions). */
const VALUE_KEY_BY_TYPE: Partial<Record<QuestionnaireItem['type'], AnswerValueKey>> = {
  boolean: 'valueBoolean',
  decimal: 'valueDecimal',
  integer: 'valueInteger',
  date: 'valueDate',
  dateTime: 'valueDateTime',
  time: 'valueTime',
  string: 'valueString',
  text: 'valueString',
  url: 'valueUri',
  attachment: 'valueAttachment',
  reference: 'valueReference',
  quantity: 'valueQuantity',
};

export const EXT = {
  minValue: 'http://hl7.org/fhir/StructureDefinition/minValue',
  maxValue: 'http://hl7.org/fhir/StructureDefinition/maxValue',
  minLength: 'http://hl7.org/fhir/StructureDefinition/minLength',
  maxDecimalPlaces: 'http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces',
  regex: 'http://hl7.org/fhir/StructureDefinition/regex',
  minOccurs: 'http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs',
  maxOccurs: 'http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs',
  maxSize: 'http://hl7.org/fhir/StructureDefinition/maxSize',
  mimeType: 'http://hl7.org/fhir/StructureDefinition/mimeType',
  calculatedExpression:
    'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression',
  variable: 'http://hl7.org/fhir/StructureDefinition/variable',
  optionExclusive: 'http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive',
  referenceResource: 'http://hl7.org/fhir/StructureDefinition/questionnaire-referenceResource',
  minQuantity: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-minQuantity',
  maxQuantity: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-maxQuantity',
  unitOption: 'http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption',
  unitValueSet: 'http://hl7.org/fhir/StructureDefinition/questionnaire-unitValueSet',
} as const;

export function valueKeyOf(answer: QuestionnaireResponseItemAnswer): AnswerValueKey | undefined {
  for (const key in answer) {
    if (key.startsWith('value')) {
      return key as AnswerValueKey;
    }
  }
  return undefined;
}

export function extensionsOf(item: { extension?: Extension[] }, url: string): Extension[] {
  return item.extension?.filter((e) => e.url === url) ?? [];
}

/** Allowed value[x] keys of an item's answers; empty for group and display. */
export function allowedValueKeys(item: QuestionnaireItem): Set<AnswerValueKey> {
  const keys = new Set<AnswerValueKey>();
  if (item.type === 'choice' || item.type === 'open-choice') {
    for (const option of item.answerOption ?? []) {
      const key = valueKeyOf(option as QuestionnaireResponseItemAnswer);
      if (key) {
        keys.add(key);
      }
    }
    if (keys.size === 0) {
      keys.add('valueCoding');
    }
    if (item.type === 'open-choice') {
      keys.add('valueString');
    }
    return keys;
  }
  const key = VALUE_KEY_BY_TYPE[item.type];
  if (key) {
    keys.add(key);
  }
  return keys;
}

/**
 * The permitted answers of a choice item, as lookup sets. Codings are keyed `system|code`; an option
 * without a system matches its code in any system, an answer without a system only such an option. `systems` holds code systems a ValueSet includes whole,
 * where only the system can be checked without a terminology server.
 */
export interface OptionSet {
  readonly keys: ReadonlySet<string>;
  readonly systems: ReadonlySet<string>;
  /** Human-readable summary for error messages. */
  readonly summary: string;
  /** The options marked questionnaire-optionExclusive: chosen, they must be the only answer. */
  readonly exclusive?: OptionSet;
}

function optionKey(key: AnswerValueKey, value: unknown): string {
  if (key === 'valueCoding') {
    const coding = value as { system?: string; code?: string };
    return `${coding.system ?? ''}|${coding.code ?? ''}`;
  }
  return `${key}:${String(value)}`;
}

export function compileOptions(item: QuestionnaireItem, questionnaire: Questionnaire): OptionSet | undefined {
  if (item.answerOption?.length) {
    return fromOptions(item.answerOption);
  }
  if (item.answerValueSet?.startsWith('#')) {
    const id = item.answerValueSet.slice(1);
    const vs = questionnaire.contained?.find((r) => r.resourceType === 'ValueSet' && r.id === id) as
      ValueSet | undefined;
    return vs ? fromValueSet(vs) : undefined;
  }
  // One of the FHIR R4 ValueSets that can be expanded from the definitions alone; any other needs a
  // terminology server, and its membership is judged by compileTerminologyChecks (terminology.ts).
  const expansion = item.answerValueSet ? expandValueSet(item.answerValueSet) : undefined;
  return expansion && fromKeys(expansion.keys, new Set(), [...expansion.codes]);
}

function fromOptions(options: QuestionnaireItemAnswerOption[], withExclusive = true): OptionSet {
  const keys = new Set<string>();
  const shown: string[] = [];
  for (const option of options) {
    const key = valueKeyOf(option as QuestionnaireResponseItemAnswer);
    if (!key) {
      continue;
    }
    const value = (option as Record<string, unknown>)[key];
    keys.add(optionKey(key, value));
    if (key === 'valueCoding') {
      shown.push(option.valueCoding?.code ?? '');
    } else {
      shown.push(String(value));
    }
  }
  const exclusive = withExclusive
    ? options.filter((o) => extensionsOf(o, EXT.optionExclusive).some((e) => e.valueBoolean === true))
    : [];
  return {
    keys,
    systems: new Set(),
    summary: shown.slice(0, 12).join(', ') + (shown.length > 12 ? ', …' : ''),
    ...(exclusive.length ? { exclusive: fromOptions(exclusive, false) } : {}),
  };
}

function fromValueSet(vs: ValueSet): OptionSet {
  const keys = new Set<string>();
  const codes = new Set<string>();
  const systems = new Set<string>();
  for (const include of vs.compose?.include ?? []) {
    if (include.concept?.length) {
      for (const concept of include.concept) {
        keys.add(`${include.system ?? ''}|${concept.code}`);
        codes.add(concept.code ?? '');
      }
    } else if (include.system) {
      systems.add(include.system);
    }
  }
  for (const entry of vs.expansion?.contains ?? []) {
    keys.add(`${entry.system ?? ''}|${entry.code ?? ''}`);
    codes.add(entry.code ?? '');
  }
  return fromKeys(keys, systems, [...codes]);
}

function fromKeys(keys: ReadonlySet<string>, systems: ReadonlySet<string>, codes: string[]): OptionSet {
  const summary = codes.slice(0, 12).join(', ') + (codes.length > 12 ? ', …' : '') || [...systems].join(', ');
  return { keys, systems, summary };
}

export function isOption(options: OptionSet, key: AnswerValueKey, value: unknown): boolean {
  if (key !== 'valueCoding') {
    return options.keys.has(optionKey(key, value));
  }
  const coding = value as { system?: string; code?: string };
  if (coding.system === undefined) {
    // The HL7 validator compares system and code: a Coding without a system matches only an option without one.
    return options.keys.has(`|${coding.code ?? ''}`);
  }
  return (
    options.keys.has(`${coding.system}|${coding.code ?? ''}`) ||
    options.keys.has(`|${coding.code ?? ''}`) ||
    options.systems.has(coding.system)
  );
}

/** What a check found wrong with an answer: an error's text, or an issue of another severity or code. */
export type AnswerProblem =
  string | { text: string; severity?: 'error' | 'warning'; code?: OperationOutcomeIssue['code'] };

/** A check of one answer value against a constraint of its item; returns what is wrong, if anything. */
export type AnswerCheck = (
  answer: QuestionnaireResponseItemAnswer,
  key: AnswerValueKey,
) => AnswerProblem | undefined;

/** Compiles the value constraints an item declares: min/max value, lengths, decimals, pattern, reference types, uri form. */
export function compileChecks(item: QuestionnaireItem): AnswerCheck[] {
  const checks: AnswerCheck[] = [];
  const bound = (url: string, sign: 1 | -1, word: string): void => {
    const ext = extensionsOf(item, url)[0];
    if (!ext) {
      return;
    }
    const limitKey = valueKeyOf(ext as QuestionnaireResponseItemAnswer);
    const limit = limitKey ? (ext as unknown as Record<string, unknown>)[limitKey] : undefined;
    if (limit === undefined) {
      return;
    }
    checks.push((answer, key) => {
      const value = comparable(answer, key);
      if (value === undefined || typeof value !== typeof limit) {
        return undefined;
      }
      const exceeds = sign > 0 ? value > (limit as number | string) : value < (limit as number | string);
      return exceeds ? `The answer ${String(value)} is ${word} the allowed ${String(limit)}` : undefined;
    });
  };
  bound(EXT.minValue, -1, 'below');
  bound(EXT.maxValue, 1, 'above');

  const maxLength = item.maxLength;
  if (maxLength !== undefined) {
    checks.push((answer) => {
      const text = answer.valueString ?? answer.valueUri;
      return text !== undefined && [...text].length > maxLength
        ? `The answer is ${[...text].length} characters long; at most ${maxLength} are allowed`
        : undefined;
    });
  }
  const minLength = extensionsOf(item, EXT.minLength)[0]?.valueInteger;
  if (minLength !== undefined) {
    checks.push((answer) => {
      const text = answer.valueString ?? answer.valueUri;
      return text !== undefined && [...text].length < minLength
        ? `The answer is ${[...text].length} characters long; at least ${minLength} are required`
        : undefined;
    });
  }
  const places = extensionsOf(item, EXT.maxDecimalPlaces)[0]?.valueInteger;
  if (places !== undefined) {
    checks.push((answer) => {
      const value = answer.valueDecimal ?? answer.valueQuantity?.value;
      if (value === undefined) {
        return undefined;
      }
      const given = decimalPlaces(value);
      return given > places
        ? `The answer ${value} has ${given} decimal places; at most ${places} are allowed`
        : undefined;
    });
  }
  const regex = extensionsOf(item, EXT.regex)[0]?.valueString;
  if (regex !== undefined) {
    let pattern: RegExp | undefined;
    try {
      pattern = new RegExp(`^(?:${regex})$`, 'u');
    } catch {
      pattern = undefined; // reported by the Questionnaire compiler
    }
    if (pattern) {
      const re = pattern;
      checks.push((answer, key) => {
        const value = comparable(answer, key);
        return value !== undefined && !re.test(String(value))
          ? `The answer does not match the required pattern`
          : undefined;
      });
    }
  }
  const resourceTypes = extensionsOf(item, EXT.referenceResource).flatMap((e) =>
    e.valueCode ? [e.valueCode] : [],
  );
  if (resourceTypes.length) {
    checks.push((answer) => {
      const text = answer.valueReference?.reference;
      const parsed = text === undefined ? undefined : parseReference(text);
      // Only a literal reference names its type; others are judged by the reference stage.
      if (!parsed?.ok || !('resourceType' in parsed.reference)) {
        return undefined;
      }
      const type = parsed.reference.resourceType;
      return resourceTypes.includes(type)
        ? undefined
        : `The reference ${text} is to a ${type}; only ${resourceTypes.join(', ')} may be referenced`;
    });
  }
  if (item.type === 'url') {
    checks.push((answer) => (answer.valueUri === undefined ? undefined : uriProblem(answer.valueUri)));
  }
  return checks;
}

/**
 * The decimal places of a number as JSON gave it: `0.0000001` prints as `1e-7` in JavaScript, which has
 * seven places, not none. (Trailing zeros the sender wrote, as in `2.50`, are lost in parsing.)
 */
function decimalPlaces(value: number): number {
  const [mantissa, exponent] = String(value).toLowerCase().split('e');
  const fraction = mantissa.split('.')[1]?.length ?? 0;
  return Math.max(0, fraction - Number(exponent ?? 0));
}

function comparable(
  answer: QuestionnaireResponseItemAnswer,
  key: AnswerValueKey,
): number | string | undefined {
  switch (key) {
    case 'valueInteger':
    case 'valueDecimal':
    case 'valueDate':
    case 'valueDateTime':
    case 'valueTime':
    case 'valueString':
    case 'valueUri':
      return answer[key];
    case 'valueQuantity':
      return answer.valueQuantity?.value;
    default:
      return undefined;
  }
}
