import {
  getSearchParameters,
  Operator,
  splitSearchOnComma,
  type Filter,
  type SearchRequest,
} from '@medplum/core';
import { UNIT_LABEL_SYSTEM } from '../auth/unitLabel';
import { errors } from '../fhir/outcomes';
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
  const filters: Filter[] = [
    {
      code: '_security',
      operator: Operator.EQUALS,
      value: approval.units.map((unit) => `${UNIT_LABEL_SYSTEM}|${unit}`).join(','),
    },
  ];
  const dated = DATED[type];
  if (dated !== undefined) {
    filters.push(
      { code: dated, operator: Operator.GREATER_THAN_OR_EQUALS, value: approval.period.start },
      { code: dated, operator: Operator.LESS_THAN_OR_EQUALS, value: approval.period.end },
    );
  }
  return filters;
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
