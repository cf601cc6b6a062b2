import type { Coding, Quantity, QuestionnaireItem } from '@medplum/fhirtypes';
import { UcumLhcUtils } from '@lhncbc/ucum-lhc';
import { expandValueSet, expansionContains } from '../valuesets';
import { EXT, extensionsOf, type AnswerCheck } from './answers';

const UCUM = 'http://unitsofmeasure.org';

/**
 * The checks of a quantity item's answers, as the HL7 validator makes them: within the SDC
 * minQuantity/maxQuantity (converted through UCUM when the units differ), in a unit the item offers
 * (questionnaire-unitOption) or from its unit ValueSet (questionnaire-unitValueSet).
 */
export function compileQuantityChecks(item: QuestionnaireItem): AnswerCheck[] {
  const checks: AnswerCheck[] = [];
  const min = extensionsOf(item, EXT.minQuantity)[0]?.valueQuantity;
  const max = extensionsOf(item, EXT.maxQuantity)[0]?.valueQuantity;
  for (const [limit, sign, word] of [
    [min, -1, 'minimum'],
    [max, 1, 'maximum'],
  ] as const) {
    if (limit?.value !== undefined) {
      checks.push((answer) => {
        const given = answer.valueQuantity;
        if (given?.value === undefined) {
          return undefined;
        }
        const value = inUnitOf(given, limit);
        if (typeof value === 'string') {
          return `The quantity ${show(given)} cannot be compared with the allowed ${word} ${show(limit)}: ${value}`;
        }
        const beyond = sign < 0 ? value < (limit.value as number) : value > (limit.value as number);
        return beyond
          ? `The quantity ${show(given)} is ${sign < 0 ? 'below' : 'above'} the allowed ${word} ${show(limit)}`
          : undefined;
      });
    }
  }
  const units = extensionsOf(item, EXT.unitOption).flatMap((e) => (e.valueCoding ? [e.valueCoding] : []));
  if (units.length) {
    checks.push((answer) => {
      const given = answer.valueQuantity;
      return !given || units.some((unit) => offers(unit, given))
        ? undefined
        : `The unit of ${show(given)} is not one the question offers (${units.map(showUnit).join(', ')})`;
    });
  }
  const unitValueSet = extensionsOf(item, EXT.unitValueSet)[0];
  const valueSetUrl = unitValueSet?.valueCanonical ?? unitValueSet?.valueUri;
  if (valueSetUrl) {
    const expansion = expandValueSet(valueSetUrl);
    checks.push((answer) => {
      const given = answer.valueQuantity;
      if (!given) {
        return undefined;
      }
      if (!expansion) {
        return {
          severity: 'warning',
          text: `The unit ValueSet ${valueSetUrl} cannot be expanded here, so the unit of ${show(given)} was not checked`,
        };
      }
      return given.code !== undefined && expansionContains(expansion, given.code, given.system ?? '')
        ? undefined
        : `The unit of ${show(given)} is not in the unit ValueSet ${valueSetUrl}`;
    });
  }
  return checks;
}

/**
 * The answer's value in the limit's unit, or why it cannot be had: both need a coded unit; the same
 * system and code compare as they are; two UCUM units are converted (commensurable ones only).
 */
function inUnitOf(given: Quantity, limit: Quantity): number | string {
  if (!given.system || !given.code || !limit.system || !limit.code) {
    return 'both need a coded unit (system and code)';
  }
  if (given.system === limit.system && given.code === limit.code) {
    return given.value as number;
  }
  if (given.system !== UCUM || limit.system !== UCUM) {
    return 'their units are from different systems';
  }
  const converted = ucum().convertUnitTo(given.code, given.value as number, limit.code);
  return converted.status === 'succeeded' && converted.toVal !== null
    ? converted.toVal
    : `UCUM cannot convert ${given.code} to ${limit.code}`;
}

/** What the HL7 validator matches: each of the option's system and code that it has, and its display as the unit. */
function offers(unit: Coding, given: Quantity): boolean {
  return (
    (unit.system === undefined || unit.system === given.system) &&
    (unit.code === undefined || unit.code === given.code) &&
    // The display is the unit text only for an option without a code; a coded unit is its code.
    (unit.code !== undefined || unit.display === undefined || unit.display === given.unit)
  );
}

let instance: UcumLhcUtils | undefined;
/** UCUM's tables load on first use: most Questionnaires have no quantity items. */
function ucum(): UcumLhcUtils {
  instance ??= UcumLhcUtils.getInstance();
  return instance;
}

function show(q: Quantity): string {
  const unit = q.code ?? q.unit;
  return `${q.comparator ?? ''}${q.value ?? ''}${unit ? ` ${unit}` : ''}`;
}

function showUnit(unit: Coding): string {
  return unit.code ?? unit.display ?? '';
}
