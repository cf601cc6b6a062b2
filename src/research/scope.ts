import {
  getSearchParameters,
  Operator,
  splitSearchOnComma,
  type Filter,
  type SearchRequest,
} from '@medplum/core';
import { unitsFilter } from '../auth/unitLabel';
import { errors } from '../fhir/outcomes';
import { parseCanonical } from '../validation/questionnaire';
import type { Approval, StudyResourceType } from './approval';

/**
 * What of the clinical store a study's view covers, as store filters, and which search parameters its
 * researcher may use (DESIGN §3.5):
 *
 * - a resource is in the view when it carries the unit label of a covered unit and, for the dated types
 *   (EpisodeOfCare, Encounter: their period; QuestionnaireResponse: authored, and only of Questionnaires
 *   with approved items), its date lies in the approval period;
 * - a person is in the view (their Patient, Conditions and Procedures) when they have one of those dated
 *   resources in it: "persons with data at the covered units in the period" (see view.ts, cohort);
 * - a type is in the view when the approval names one of its elements (QuestionnaireResponse: an item);
 *   the Patient always is, as the person the rest refers to.
 *
 * A search parameter may be used only when every element it searches is approved, and a date only to the
 * approved precision: otherwise a researcher could learn hidden values by filtering on them.
 */

/** The dated types and the search parameter of their date. */
export const DATED: Partial<Record<StudyResourceType, string>> = {
  EpisodeOfCare: 'date',
  Encounter: 'date',
  QuestionnaireResponse: 'authored',
};

export function typeInView(approval: Approval, type: StudyResourceType): boolean {
  if (type === 'Patient') return true;
  if (type === 'QuestionnaireResponse') return approval.items.size > 0;
  return (approval.elements.get(type)?.length ?? 0) > 0;
}

/** The store filters that hold a search of `type` to the view (the cohort of persons aside). */
export function viewFilters(approval: Approval, type: StudyResourceType): Filter[] {
  const filters = periodFilters(approval, type);
  if (type === 'QuestionnaireResponse') {
    filters.push({
      code: 'questionnaire',
      operator: Operator.EQUALS,
      value: [...approval.items.keys()].join(','),
    });
  }
  return filters;
}

/** Data at the covered units in the period (what makes a person part of the study's cohort). */
export function periodFilters(approval: Approval, type: StudyResourceType): Filter[] {
  const filters: Filter[] = [unitsFilter(approval.units)];
  const dated = DATED[type];
  if (dated !== undefined) {
    filters.push(
      { code: dated, operator: Operator.GREATER_THAN_OR_EQUALS, value: approval.period.start },
      { code: dated, operator: Operator.LESS_THAN_OR_EQUALS, value: approval.period.end },
    );
  }
  return filters;
}

const LOWER = new Set<string>([
  Operator.GREATER_THAN_OR_EQUALS,
  Operator.GREATER_THAN,
  Operator.STARTS_AFTER,
]);
const UPPER = new Set<string>([Operator.LESS_THAN_OR_EQUALS, Operator.LESS_THAN, Operator.ENDS_BEFORE]);

/**
 * A researcher's filters (ids already translated) and the view's, as one search. On the dated parameter
 * the researcher's own bounds are clamped to the period instead of adding the period's as second bounds
 * (HAPI refuses two lower or two upper bounds on one parameter); `eq` becomes the two bounds of its range.
 */
export function searchFilters(approval: Approval, type: StudyResourceType, own: readonly Filter[]): Filter[] {
  const dated = DATED[type];
  let view = viewFilters(approval, type);
  if (type === 'QuestionnaireResponse' && own.some(isQuestionnaireFilter)) {
    // The researcher's own questionnaire filter, narrowed to the approved ones, replaces the view's: one
    // index probe fewer on the commonest search.
    view = view.filter((f) => f.code !== 'questionnaire');
    own = own.map((f) => (isQuestionnaireFilter(f) ? approvedQuestionnaires(approval, f) : f));
  }
  if (dated === undefined || !own.some((f) => f.code === dated)) return [...own, ...view];
  const { start, end } = approval.period;
  const out: Filter[] = [];
  let lower = false;
  let upper = false;
  for (const filter of own) {
    const parts: Filter[] =
      filter.code === dated && filter.operator === Operator.EQUALS
        ? [
            { ...filter, operator: Operator.GREATER_THAN_OR_EQUALS },
            { ...filter, operator: Operator.LESS_THAN_OR_EQUALS },
          ]
        : [filter];
    for (const part of parts) {
      if (part.code === dated && LOWER.has(part.operator)) {
        lower = true;
        out.push(
          part.value < start ? { ...part, operator: Operator.GREATER_THAN_OR_EQUALS, value: start } : part,
        );
      } else if (part.code === dated && UPPER.has(part.operator)) {
        upper = true;
        out.push(part.value > end ? { ...part, operator: Operator.LESS_THAN_OR_EQUALS, value: end } : part);
      } else {
        out.push(part);
      }
    }
  }
  const bounds = view.filter(
    (f) =>
      f.code !== dated ||
      (f.operator === Operator.GREATER_THAN_OR_EQUALS && !lower) ||
      (f.operator === Operator.LESS_THAN_OR_EQUALS && !upper),
  );
  return [...out, ...bounds];
}

function isQuestionnaireFilter(filter: Filter): boolean {
  return filter.code === 'questionnaire' && filter.operator === Operator.EQUALS;
}

/** A questionnaire filter with only the approved Questionnaires left (none: one that matches nothing). */
function approvedQuestionnaires(approval: Approval, filter: Filter): Filter {
  const approved = splitSearchOnComma(filter.value).filter((v) => approval.items.has(parseCanonical(v).url));
  return { ...filter, value: approved.length > 0 ? approved.join(',') : 'urn:norpain:not-approved' };
}

/** Search parameters that search what every researcher of the type is shown anyway. */
const ALWAYS: Partial<Record<StudyResourceType, readonly string[]>> = {
  QuestionnaireResponse: ['questionnaire'],
};

/** The element paths (below the resource) a search parameter of `type` searches. */
function searchedPaths(type: string, code: string): string[] | undefined {
  const expression = getSearchParameters(type)?.[code]?.expression;
  if (expression === undefined) return undefined;
  return expression
    .split('|')
    .map((part) => part.trim().replace(/^\(/, ''))
    .filter((part) => part.startsWith(`${type}.`))
    .map((part) => part.slice(type.length + 1).split(/\.where\(|\.as\(| as |\.exists\(|\)|\s/)[0]);
}

/** Whether the approved paths cover `path`: the path itself, an ancestor of it, or a choice of it. */
function covered(path: string, approved: readonly string[]): boolean {
  return approved.some(
    (a) =>
      a === path || path.startsWith(`${a}.`) || (a.startsWith(path) && /^[A-Z]/.test(a.slice(path.length))),
  );
}

/** Throws the 403 saying why a parameter may not be used; returns when it may. */
function checkParameter(approval: Approval, type: StudyResourceType, code: string, what: string): void {
  if (code === '_id' || code === '_lastUpdated' || ALWAYS[type]?.includes(code)) return;
  const paths = code.startsWith('_') ? undefined : searchedPaths(type, code);
  const approved = approval.elements.get(type) ?? [];
  if (paths === undefined || paths.length === 0 || !paths.every((p) => covered(p, approved))) {
    throw errors.forbidden(
      `${what} '${code}' searches ${type} elements this study's approval does not include; only approved variables can be searched.`,
    );
  }
}

const DATE_LENGTH = { year: 4, month: 7, day: 10 } as const;

/**
 * Refuses (403) what the researcher may not search by: parameters on unapproved elements, chains and
 * reverse chains, dates finer than the approved precision, sorts and includes by unapproved parameters.
 */
export function checkResearcherSearch(approval: Approval, request: SearchRequest): void {
  const type = request.resourceType as StudyResourceType;
  for (const filter of request.filters ?? []) {
    if (filter.code.includes('.') || filter.code.startsWith('_has')) {
      throw errors.forbidden('Chained and reverse-chained searches are not offered in the study view.');
    }
    checkParameter(approval, type, filter.code, 'The search parameter');
    const param = getSearchParameters(type)?.[filter.code];
    if (param?.type === 'date') {
      for (const value of splitSearchOnComma(filter.value)) {
        if (value.length > DATE_LENGTH[approval.datePrecision]) {
          throw errors.forbidden(
            `The study's dates are given to the ${approval.datePrecision}; '${filter.code}' cannot be searched more precisely.`,
          );
        }
      }
    }
  }
  for (const rule of request.sortRules ?? []) {
    checkParameter(approval, type, rule.code, 'The sort parameter');
  }
  for (const include of request.include ?? []) {
    checkParameter(approval, include.resourceType as StudyResourceType, include.searchParam, '_include by');
  }
  for (const include of request.revInclude ?? []) {
    checkParameter(
      approval,
      include.resourceType as StudyResourceType,
      include.searchParam,
      '_revinclude by',
    );
  }
}
