import { getSearchParameter, Operator, type Filter, type SearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';

/**
 * Two search features the embedded store has and HAPI FHIR JPA 8 lacks, written in terms HAPI knows:
 *  - `ref:identifier=sys|val` (HAPI: "Unsupported search modifier") becomes the chain
 *    `ref.identifier=sys|val`. It matches when the referenced resource carries the identifier, which for
 *    the registry's literal references to Organizations with a RESH id is the same thing; a reference that
 *    holds only an identifier and no literal reference is not found this way (docs/hapi.md).
 *  - `date=apX` on a date parameter (HAPI: "Unknown comparator: APPROXIMATE") becomes
 *    `date=geX-d&date=leX+d`, i.e. overlaps X ± d, with d a tenth of the time between X and now and at
 *    least a day, as the FHIR specification suggests for `ap`.
 */
export function translateForHapi<T extends Resource>(
  request: SearchRequest<T>,
  now = Date.now(),
): SearchRequest<T> {
  if (
    !request.filters?.some((f) => f.operator === Operator.IDENTIFIER || f.operator === Operator.APPROXIMATELY)
  ) {
    return request;
  }
  const filters: Filter[] = [];
  for (const filter of request.filters) {
    if (filter.operator === Operator.IDENTIFIER) {
      filters.push({ code: `${filter.code}.identifier`, operator: Operator.EQUALS, value: filter.value });
    } else if (filter.operator === Operator.APPROXIMATELY && isDateParameter(request.resourceType, filter)) {
      filters.push(...approximately(filter, now));
    } else {
      filters.push(filter);
    }
  }
  return { ...request, filters };
}

const DATE_VALUE = /^\d{4}(-\d{2}(-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?)?)?$/;
const DAY = 24 * 60 * 60 * 1000;

function isDateParameter(resourceType: string, filter: Filter): boolean {
  const definition = getSearchParameter(resourceType, filter.code);
  if (definition !== undefined) {
    return definition.type === 'date';
  }
  // Definitions not loaded: only a value with a month is taken for a date (a bare 2022 may be a number).
  return DATE_VALUE.test(filter.value) && filter.value.length >= 7;
}

function approximately(filter: Filter, now: number): Filter[] {
  const at = Date.parse(filter.value.length === 4 ? `${filter.value}-07-01` : filter.value);
  if (Number.isNaN(at)) {
    return [filter]; // HAPI will say what is wrong with the value
  }
  const slack = Math.max(DAY, Math.abs(now - at) / 10);
  const day = (t: number) => new Date(t).toISOString().slice(0, 10);
  return [
    { code: filter.code, operator: Operator.GREATER_THAN_OR_EQUALS, value: day(at - slack) },
    { code: filter.code, operator: Operator.LESS_THAN_OR_EQUALS, value: day(at + slack) },
  ];
}
