import { Operator, type SearchRequest } from '@medplum/core';
import type { AuditEvent, AuditEventEntity } from '@medplum/fhirtypes';
import { errors } from '../fhir/outcomes';
import { parseLiteralKey } from '../fhir/reference';
import type { SearchResult } from '../store/FhirStore';
import { AUDIT_SYSTEMS, patientPseudonymsOf, type AuditAction, type AuditOutcome } from './auditEvent';
import type { AuditLog, AuditSearch } from './log';

/**
 * `GET /fhir/AuditEvent` semantics over the audit log: FHIR search parameters (already parsed by
 * @medplum/core's parseSearchRequest) become an AuditSearch, and the caller's scope decides what may
 * be seen. Registry staff see everything; a citizen (portal) sees the events about their own person,
 * each reduced by viewForPerson so that other people's pseudonyms and resource ids never show.
 *
 * Supported: patient:identifier (registry pseudonym), agent:identifier (client id, RESH, HPR or
 * pseudonym), date (eq ge gt le lt sa eb; dates without a time are UTC days), action, outcome,
 * _count, _offset, _sort=date|-date, _total, _summary=count (parsed by @medplum/core as _count=0).
 */

/** Whose events the caller may see. The HTTP layer decides it from the principal (matrix in src/auth). */
export type AuditScope = { kind: 'all' } | { kind: 'person'; pseudonym: string };

const AUDIT_SEARCH_PARAMETERS = ['patient', 'agent', 'date', 'action', 'outcome'] as const;

const ACTIONS: readonly AuditAction[] = ['C', 'R', 'U', 'D', 'E'];
const OUTCOMES: readonly AuditOutcome[] = ['0', '4', '8', '12'];

export function searchAuditEvents(
  log: AuditLog,
  request: SearchRequest,
  scope: AuditScope,
): SearchResult<AuditEvent> {
  const params = auditSearchFromRequest(request);
  if (scope.kind === 'person') {
    if (params.patientPseudonym !== undefined && params.patientPseudonym !== scope.pseudonym) {
      throw errors.forbidden(
        'A citizen can search only the audit events about themselves; leave out patient.',
      );
    }
    params.patientPseudonym = scope.pseudonym;
  }
  const result = log.search(params);
  if (scope.kind === 'person') {
    result.matches = result.matches.map((event) => viewForPerson(event, scope.pseudonym));
  }
  return result;
}

function auditSearchFromRequest(request: SearchRequest): AuditSearch {
  const params: AuditSearch = {};
  for (const filter of request.filters ?? []) {
    const expression =
      filter.operator === Operator.EQUALS ? filter.code : `${filter.code}:${filter.operator}`;
    switch (filter.code) {
      case 'patient':
        params.patientPseudonym = identifierValue(filter.operator, filter.value, 'patient', true);
        break;
      case 'agent':
        params.agent = identifierValue(filter.operator, filter.value, 'agent', false);
        break;
      case 'date':
        narrowDates(params, filter.operator, filter.value);
        break;
      case 'action':
        params.action = tokens(filter.operator, filter.value, ACTIONS, expression);
        break;
      case 'outcome':
        params.outcome = tokens(filter.operator, filter.value, OUTCOMES, expression);
        break;
      default:
        throw errors.badRequest(
          `AuditEvent cannot be searched by ${filter.code}; use ${AUDIT_SEARCH_PARAMETERS.join(', ')}.`,
          filter.code,
        );
    }
  }
  if (request.count !== undefined) params.count = request.count;
  if (request.offset !== undefined) params.offset = request.offset;
  for (const rule of request.sortRules ?? []) {
    if (rule.code !== 'date') {
      throw errors.badRequest('AuditEvent can be sorted only by date (_sort=date or _sort=-date).', '_sort');
    }
    params.sort = rule.descending ? 'newest' : 'oldest';
  }
  return params;
}

/**
 * What a citizen sees of an event about them. An event may concern several people (a clinic's search);
 * then the other people's pseudonyms are removed and the resources are shown by type only, because a
 * resource id does not say whose it is.
 */
export function viewForPerson(event: AuditEvent, pseudonym: string): AuditEvent {
  const patients = patientPseudonymsOf(event);
  if (patients.every((p) => p === pseudonym)) {
    return event;
  }
  const entity = (event.entity ?? []).flatMap((e): AuditEventEntity[] => {
    const isPatient = e.role?.code === '1' && e.what?.identifier?.system === AUDIT_SYSTEMS.registryPseudonym;
    if (isPatient) {
      return e.what?.identifier?.value === pseudonym ? [e] : [];
    }
    const reference = e.what?.reference;
    if (reference === undefined) {
      return [e];
    }
    // A reference that is no `Type/id` cannot be reduced to its type; it is left out rather than shown.
    const type = parseLiteralKey(reference)?.resourceType;
    return type === undefined ? [] : [{ ...e, what: { type } }];
  });
  const seen = new Set<string>();
  return {
    ...event,
    entity: entity.filter((e) => {
      const key = JSON.stringify(e);
      return seen.has(key) ? false : (seen.add(key), true);
    }),
  };
}

function identifierValue(operator: Operator, value: string, code: string, pseudonymOnly: boolean): string {
  if (operator !== Operator.IDENTIFIER) {
    throw errors.badRequest(
      `Search AuditEvent by ${code}:identifier=` +
        (pseudonymOnly ? `${AUDIT_SYSTEMS.registryPseudonym}|<pseudonym>.` : '<id>.'),
      code,
    );
  }
  const bar = value.indexOf('|');
  const system = bar < 0 ? undefined : value.slice(0, bar);
  const id = bar < 0 ? value : value.slice(bar + 1);
  if (pseudonymOnly && system !== undefined && system !== AUDIT_SYSTEMS.registryPseudonym) {
    // The log holds registry pseudonyms only; a national id would first have to be pseudonymised.
    throw errors.badRequest(
      `The audit log knows persons by registry pseudonym only (system ${AUDIT_SYSTEMS.registryPseudonym}).`,
      `${code}:identifier`,
    );
  }
  if (id === '') {
    throw errors.badRequest(`${code}:identifier needs a value.`, `${code}:identifier`);
  }
  return id;
}

function tokens<T extends string>(
  operator: Operator,
  value: string,
  allowed: readonly T[],
  expression: string,
): T[] {
  const codes = value.split(',').map((v) => v.slice(v.indexOf('|') + 1));
  const bad = codes.find((c) => !allowed.includes(c as T));
  if (operator !== Operator.EQUALS || bad !== undefined) {
    throw errors.badRequest(`${expression} must be one or more of ${allowed.join(', ')}.`, expression);
  }
  return codes as T[];
}

const DATE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/** Narrows since/before by one date parameter, treating the value as the period its precision spans. */
function narrowDates(params: AuditSearch, operator: Operator, value: string): void {
  const period = periodOf(value);
  const since = (instant: string): void => {
    params.since = params.since === undefined || instant > params.since ? instant : params.since;
  };
  const before = (instant: string): void => {
    params.before = params.before === undefined || instant < params.before ? instant : params.before;
  };
  switch (operator) {
    case Operator.EQUALS:
      since(period.start);
      before(period.end);
      break;
    case Operator.GREATER_THAN_OR_EQUALS:
      since(period.start);
      break;
    case Operator.GREATER_THAN:
    case Operator.STARTS_AFTER:
      since(period.end);
      break;
    case Operator.LESS_THAN_OR_EQUALS:
      before(period.end);
      break;
    case Operator.LESS_THAN:
    case Operator.ENDS_BEFORE:
      before(period.start);
      break;
    default:
      throw errors.badRequest('date supports the prefixes eq, ge, gt, le, lt, sa and eb.', 'date');
  }
}

function periodOf(value: string): { start: string; end: string } {
  const m = DATE.exec(value);
  if (m === null) {
    throw errors.badRequest(
      'date must be YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with a time zone, e.g. 2025-03-01T12:00:00Z.',
      'date',
    );
  }
  const [, y, mo, d, h, , s, fraction] = m;
  const [year, month, day] = [Number(y), Number(mo ?? 1) - 1, Number(d ?? 1)];
  const first = new Date(Date.UTC(year, month, day));
  // Date.UTC and Date.parse roll 2025-02-30 over into March; a real calendar date survives the round trip.
  if (first.getUTCMonth() !== month || first.getUTCDate() !== day) {
    throw errors.badRequest(`date ${value} is not a calendar date.`, 'date');
  }
  let start: number;
  let end: number;
  if (h !== undefined) {
    start = Date.parse(value);
    // A dateTime spans one unit of its last given component (minute, second or millisecond).
    end = start + (fraction !== undefined ? 1 : s !== undefined ? 1000 : 60_000);
  } else {
    // A date without a time spans its UTC year, month or day.
    start = first.getTime();
    end =
      d !== undefined
        ? Date.UTC(year, month, day + 1)
        : mo !== undefined
          ? Date.UTC(year, month + 1, 1)
          : Date.UTC(year + 1, 0, 1);
  }
  if (Number.isNaN(start)) {
    throw errors.badRequest(`date ${value} is not a valid dateTime.`, 'date');
  }
  return { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
}
