import type {
  Coding,
  Quantity,
  QuestionnaireItem,
  QuestionnaireItemEnableWhen,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';

/** One enableWhen condition, turned into a test over the answers of the question it names. */
export interface CompiledCondition {
  /** linkId of the question whose answers decide. */
  readonly question: string;
  /** Answers of that question (empty when unanswered or disabled) → whether the condition holds. */
  readonly test: (answers: readonly QuestionnaireResponseItemAnswer[]) => boolean;
}

export interface CompiledEnableWhen {
  readonly conditions: readonly CompiledCondition[];
  /** enableBehavior = any; R4 makes `all` the meaning when it is absent. */
  readonly any: boolean;
}

type Operator = QuestionnaireItemEnableWhen['operator'];

/**
 * Compiles an item's enableWhen once per Questionnaire so that a response costs only a few closure calls.
 * Semantics follow the HL7 validator (EnableWhenEvaluator): `exists` compares presence with answerBoolean;
 * every other operator holds when at least one answer satisfies it, so an unanswered question never
 * enables through `!=`.
 */
export function compileEnableWhen(item: QuestionnaireItem): CompiledEnableWhen | undefined {
  if (!item.enableWhen?.length) {
    return undefined;
  }
  return {
    any: item.enableBehavior === 'any',
    conditions: item.enableWhen.map((ew) => ({ question: ew.question, test: compileCondition(ew) })),
  };
}

function compileCondition(ew: QuestionnaireItemEnableWhen): CompiledCondition['test'] {
  if (ew.operator === 'exists') {
    const wanted = ew.answerBoolean !== false;
    return (answers) => answers.length > 0 === wanted;
  }
  const compare = comparator(ew);
  const holds = verdict(ew.operator);
  return (answers) => {
    for (const answer of answers) {
      const order = compare(answer);
      if (order !== undefined && holds(order)) {
        return true;
      }
    }
    return false;
  };
}

/** Maps a three-way comparison result (answer vs expected) to the operator's truth. NaN = unordered. */
function verdict(operator: Operator): (order: number) => boolean {
  switch (operator) {
    case '=':
      return (o) => o === 0;
    case '!=':
      return (o) => o !== 0;
    case '>':
      return (o) => o > 0;
    case '<':
      return (o) => o < 0;
    case '>=':
      return (o) => o >= 0;
    case '<=':
      return (o) => o <= 0;
    default:
      return () => false;
  }
}

/**
 * Returns a function comparing an answer with the condition's answer[x]: negative, 0 or positive;
 * NaN when equal/unequal is all that can be said (codings, booleans, references); undefined when the
 * answer is of another type and so cannot satisfy the condition.
 */
function comparator(
  ew: QuestionnaireItemEnableWhen,
): (a: QuestionnaireResponseItemAnswer) => number | undefined {
  if (ew.answerBoolean !== undefined) {
    const expected = ew.answerBoolean;
    return (a) => (a.valueBoolean === undefined ? undefined : a.valueBoolean === expected ? 0 : NaN);
  }
  if (ew.answerInteger !== undefined || ew.answerDecimal !== undefined) {
    const expected = (ew.answerInteger ?? ew.answerDecimal) as number;
    return (a) => {
      const v = a.valueInteger ?? a.valueDecimal;
      return v === undefined ? undefined : v - expected;
    };
  }
  if (ew.answerString !== undefined) {
    return textual(ew.answerString, (a) => a.valueString);
  }
  if (ew.answerDate !== undefined) {
    return textual(ew.answerDate, (a) => a.valueDate);
  }
  if (ew.answerDateTime !== undefined) {
    return textual(ew.answerDateTime, (a) => a.valueDateTime);
  }
  if (ew.answerTime !== undefined) {
    return textual(ew.answerTime, (a) => a.valueTime);
  }
  if (ew.answerCoding !== undefined) {
    const expected = ew.answerCoding;
    return (a) => (a.valueCoding === undefined ? undefined : sameCoding(a.valueCoding, expected) ? 0 : NaN);
  }
  if (ew.answerQuantity !== undefined) {
    const expected = ew.answerQuantity;
    return (a) => compareQuantity(a.valueQuantity, expected);
  }
  if (ew.answerReference !== undefined) {
    const expected = ew.answerReference.reference;
    return (a) =>
      a.valueReference === undefined ? undefined : a.valueReference.reference === expected ? 0 : NaN;
  }
  return () => undefined;
}

function textual(
  expected: string,
  pick: (a: QuestionnaireResponseItemAnswer) => string | undefined,
): (a: QuestionnaireResponseItemAnswer) => number | undefined {
  return (a) => {
    const v = pick(a);
    if (v === undefined) {
      return undefined;
    }
    // ISO 8601 dates and times of equal precision order correctly as text.
    return v === expected ? 0 : v < expected ? -1 : 1;
  };
}

/** Codings match on code, and on system when both name one (renderers sometimes drop the system). */
function sameCoding(a: Coding, b: Coding): boolean {
  return a.code === b.code && (a.system === undefined || b.system === undefined || a.system === b.system);
}

function compareQuantity(a: Quantity | undefined, b: Quantity): number | undefined {
  if (a?.value === undefined || b.value === undefined) {
    return undefined;
  }
  const unitA = a.code ?? a.unit;
  const unitB = b.code ?? b.unit;
  if (unitA !== unitB) {
    return undefined;
  }
  return a.value - b.value;
}
