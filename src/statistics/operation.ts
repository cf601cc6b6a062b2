import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import type { OperationCall, OperationHandler, OperationRequest } from '../fhir/classify';
import type { InteractionContext } from '../fhir/interactions';
import { errors, issue } from '../fhir/outcomes';
import type { Dimension, Observation } from './cube';
import { readEpisodes, type Episode, type ResourceStream } from './episodes';
import { publishTable, slice, type PublishedCell } from './publish';
import { THRESHOLD } from './suppression';
import { numericVariables } from './variables';

/**
 * `$stats` (system level, GET or POST): counts, means and medians of the registry's numeric variables
 * by year and, as asked, unit, sex and age band, with small cells suppressed
 * (src/statistics/suppression.ts). OperationDefinition: src/statistics/operationDefinition.ts.
 *
 * What keeps two calls from being differenced (docs/statistics.md): the caller never chooses the
 * population (it is the caller's whole view: all units for staff, the study's view for a researcher);
 * the only filters are whole years, and each year is its own table (no total over a chosen range of
 * years); and whatever the grouping, the answer is a slice of one table over unit × sex × age band,
 * computed and suppressed whole. So any two answers are slices of the same published table.
 */

export const GROUPINGS = ['unit', 'sex', 'age-band'] as const;
export type Grouping = (typeof GROUPINGS)[number];
export const STATISTICS = ['count', 'mean', 'median'] as const;
export type Statistic = (typeof STATISTICS)[number];

export interface StatsQuery {
  variables: string[];
  statistics: Statistic[];
  groupBy: Grouping[];
  from?: number;
  to?: number;
}

/** Whose data a call aggregates: the caller's whole view, never something the call chooses. */
export interface Population {
  /** Said in the answer: "registry" (staff) or "study <id>". */
  label: string;
  /** unit, sex and age-band, with the values this view can hold (src/statistics/populations.ts). */
  dimensions: readonly Dimension[];
  stream: ResourceStream;
  /** Refuses (403) a variable or grouping the caller may not aggregate. */
  check(query: StatsQuery): void;
}

export interface StatsDeps {
  /** The caller's population (403 when the caller has none to aggregate). */
  population(ctx: InteractionContext): Promise<Population>;
}

const NAMES = new Set(['variable', 'statistic', 'groupBy', 'from', 'to']);

export function statsOperation(deps: StatsDeps): OperationHandler {
  return async (ctx, request) => {
    const query = parseQuery(request);
    const population = await deps.population(ctx);
    population.check(query);
    const episodes = await readEpisodes(population.stream, { variables: new Set(query.variables) });
    return { status: 200, body: answer(query, population, episodes), headers: {} };
  };
}

/** The parameters, from the query string (GET) or a Parameters body (POST). */
function parseQuery(request: OperationRequest<OperationCall>): StatsQuery {
  const pairs: [string, string][] = [];
  if (request.what.method === 'POST') {
    const body = request.body() as Parameters;
    if (body?.resourceType !== 'Parameters') {
      throw errors.badRequest('$stats takes a Parameters resource when POSTed.', 'Parameters');
    }
    for (const p of body.parameter ?? []) {
      const value =
        p.valueString ?? p.valueCode ?? (p.valueInteger === undefined ? undefined : String(p.valueInteger));
      if (value === undefined) {
        throw errors.badRequest(
          `Parameter ${quoted(p.name)} needs a valueString, valueCode or valueInteger.`,
          'Parameters.parameter',
        );
      }
      pairs.push([p.name, value]);
    }
  } else {
    for (const [name, value] of request.params) {
      if (name === '_format') continue;
      pairs.push(...value.split(',').map((v): [string, string] => [name, v]));
    }
  }
  const unknown = pairs.find(([name]) => !NAMES.has(name));
  if (unknown) {
    throw errors.badRequest(
      `$stats has no parameter ${quoted(unknown[0])}; it takes variable, statistic, groupBy, from and to.`,
      quoted(unknown[0]),
    );
  }
  const all = (name: string): string[] => pairs.filter(([n]) => n === name).map(([, v]) => v);
  const variables = [...new Set(all('variable'))];
  const catalogue = numericVariables();
  for (const variable of variables) {
    if (!catalogue.has(variable)) {
      throw errors.unprocessable([
        issue(
          'value',
          `${quoted(variable)} is not a numeric variable of the registry's Questionnaires; name one as <Questionnaire url>#<linkId>, e.g. https://norpain.no/fhir/Questionnaire/norpain-baseline#smerteintensitet.`,
          'variable',
        ),
      ]);
    }
  }
  const statistics = [...new Set(all('statistic'))];
  const badStatistic = statistics.find((s) => !(STATISTICS as readonly string[]).includes(s));
  if (badStatistic !== undefined) {
    throw errors.badRequest(
      `statistic must be one of ${STATISTICS.join(', ')}, not ${quoted(badStatistic)}.`,
      'statistic',
    );
  }
  if (statistics.some((s) => s !== 'count') && variables.length === 0) {
    throw errors.badRequest('A mean or median needs a variable.', 'variable');
  }
  const groupBy = [...new Set(all('groupBy'))];
  const badGrouping = groupBy.find((g) => !(GROUPINGS as readonly string[]).includes(g));
  if (badGrouping !== undefined) {
    throw errors.badRequest(
      `groupBy must be among ${GROUPINGS.join(', ')} (the year is always one), not ${quoted(badGrouping)}.`,
      'groupBy',
    );
  }
  const year = (name: 'from' | 'to'): number | undefined => {
    const values = all(name);
    if (values.length === 0) return undefined;
    if (values.length > 1 || !/^\d{4}$/.test(values[0])) {
      throw errors.badRequest(`${name} is one year (four digits).`, name);
    }
    return Number(values[0]);
  };
  const from = year('from');
  const to = year('to');
  if (from !== undefined && to !== undefined && from > to) {
    throw errors.badRequest('from is after to.', 'from');
  }
  return {
    variables,
    statistics: (statistics.length === 0 ? ['count'] : statistics) as Statistic[],
    groupBy: groupBy as Grouping[],
    from,
    to,
  };
}

/** A parameter name or value fit to quote back: short and of the characters such names have. */
function quoted(text: string): string {
  return /^[A-Za-z0-9_:./#|-]{1,200}$/.test(text) ? text : '(a value)';
}

function observations(
  episodes: readonly Episode[],
  year: number,
  variable: string | undefined,
): Observation[] {
  return episodes.flatMap((e) => {
    if (e.year !== year) return [];
    const value = variable === undefined ? undefined : e.answers.get(variable);
    if (variable !== undefined && value === undefined) return [];
    return [{ person: e.person, at: [e.unit, e.sex, e.ageBand], value }];
  });
}

function answer(query: StatsQuery, population: Population, episodes: readonly Episode[]): Parameters {
  const years = [...new Set(episodes.map((e) => e.year))]
    .filter((y) => (query.from === undefined || y >= query.from) && (query.to === undefined || y <= query.to))
    .sort();
  const parameter: ParametersParameter[] = [
    { name: 'population', valueString: population.label },
    { name: 'threshold', valueInteger: THRESHOLD },
  ];
  const variables: (string | undefined)[] = query.variables.length === 0 ? [undefined] : query.variables;
  for (const year of years) {
    for (const variable of variables) {
      const table = publishTable(population.dimensions, observations(episodes, year, variable));
      for (const cell of slice(table, query.groupBy)) {
        for (const statistic of query.statistics) {
          parameter.push({ name: 'cell', part: cellParts(year, variable, statistic, cell) });
        }
      }
    }
  }
  return { resourceType: 'Parameters', parameter };
}

function cellParts(
  year: number,
  variable: string | undefined,
  statistic: Statistic,
  cell: PublishedCell,
): ParametersParameter[] {
  const parts: ParametersParameter[] = [{ name: 'year', valueInteger: year }];
  if (cell.at.unit !== undefined) parts.push({ name: 'unit', valueString: cell.at.unit });
  if (cell.at.sex !== undefined) parts.push({ name: 'sex', valueCode: cell.at.sex });
  if (cell.at['age-band'] !== undefined) parts.push({ name: 'age-band', valueString: cell.at['age-band'] });
  if (variable !== undefined) parts.push({ name: 'variable', valueString: variable });
  parts.push({ name: 'statistic', valueCode: statistic });
  const value = statistic === 'count' ? cell.persons : statistic === 'mean' ? cell.mean : cell.median;
  if (!cell.hidden && value !== undefined) {
    parts.push(
      statistic === 'count'
        ? { name: 'value', valueInteger: value }
        : { name: 'value', valueDecimal: round(value) },
    );
  }
  parts.push({ name: 'suppressed', valueBoolean: cell.hidden });
  return parts;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
