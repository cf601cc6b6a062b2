import { stringify } from 'csv-stringify/sync';
import { distributionCell, rateOf, unitCell, type AnnualReport } from './annual';

/**
 * The report's figures as CSV, exactly those the HTML shows: one row per figure, with the unit (RESH,
 * or "national"), the category of a distribution, what the figure is, and whether it is suppressed (then
 * with no value).
 */

const CSV_COLUMNS = [
  'year',
  'section',
  'table',
  'unit',
  'unit_name',
  'category',
  'statistic',
  'value',
  'suppressed',
];

export function renderCsv(report: AnnualReport): string {
  const rows: (string | number)[][] = [];
  const units = [
    ...report.shownUnits.map((u) => ({ key: u.resh as string | undefined, name: u.name })),
    { key: undefined, name: 'Nasjonalt' },
  ];
  const push = (
    section: string,
    table: string,
    unit: (typeof units)[number],
    category: string,
    statistic: string,
    value: number | undefined,
    hidden: boolean,
  ) =>
    rows.push([
      report.year,
      section,
      table,
      unit.key ?? 'national',
      unit.name,
      category,
      statistic,
      hidden || value === undefined ? '' : Math.round(value * 100) / 100,
      hidden ? 'true' : 'false',
    ]);
  for (const section of report.sections) {
    for (const table of section.tables) {
      for (const unit of units) {
        if (table.kind === 'count') {
          const cell = unitCell(table, unit.key);
          push(section.id, table.id, unit, '', 'persons', cell.persons, cell.hidden);
          push(section.id, table.id, unit, '', 'episodes', cell.records, cell.hidden);
        } else if (table.kind === 'statistic') {
          const cell = unitCell(table, unit.key);
          push(section.id, table.id, unit, '', 'n', cell.records, cell.hidden);
          push(section.id, table.id, unit, '', 'mean', cell.mean, cell.hidden);
          push(section.id, table.id, unit, '', 'median', cell.median, cell.hidden);
        } else {
          for (const category of [...table.categories.map((c) => c.code), undefined]) {
            const cell = distributionCell(table, unit.key, category);
            push(section.id, table.id, unit, category ?? 'total', 'episodes', cell.records, cell.hidden);
          }
          if (table.rate !== undefined) {
            const rate = rateOf(table, unit.key);
            const empty = distributionCell(table, unit.key, undefined).records === 0;
            push(section.id, table.id, unit, '', 'rate', rate, rate === undefined && !empty);
          }
        }
      }
    }
  }
  return stringify(rows, { header: true, columns: CSV_COLUMNS });
}
