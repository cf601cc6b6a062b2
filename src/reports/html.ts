import type { PublishedCell } from '../statistics/publish';
import { THRESHOLD } from '../statistics/suppression';
import type { Unit } from '../units/units';
import {
  distributionCell,
  rateOf,
  shareOf,
  unitCell,
  type AnnualReport,
  type CountTable,
  type DistributionTable,
  type ReportTable,
  type StatisticTable,
} from './annual';
import { distributionChart, NATIONAL_LABEL, statisticChart } from './charts';

/**
 * The annual report as one self-contained HTML page (styles and SVG charts inline, nothing fetched):
 * the national figures with every unit beside them, then a section per unit with the unit's figures
 * beside the national ones. A hidden cell shows the suppression mark and carries no figure; every table
 * cell carries data attributes (unit, category, statistic, value) so that tools can read the figures.
 */

const SUPPRESSION_MARK = ':';

const number = new Intl.NumberFormat('nb-NO', { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat('nb-NO', { style: 'percent', maximumFractionDigits: 0 });

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const unitLabel = (unit: Unit) => unit.alias ?? unit.name;

interface Td {
  unit?: string;
  category?: string;
  statistic: string;
  value?: number;
  hidden: boolean;
  text?: string;
}

function td(cell: Td): string {
  const attrs = [
    `data-unit="${cell.unit ?? 'national'}"`,
    cell.category === undefined ? '' : `data-category="${escape(cell.category)}"`,
    `data-statistic="${cell.statistic}"`,
  ];
  if (cell.hidden) {
    return `<td class="suppressed" data-suppressed="true" ${attrs.join(' ')} title="skjult">${SUPPRESSION_MARK}</td>`;
  }
  if (cell.value === undefined) return `<td ${attrs.join(' ')}>–</td>`;
  return `<td ${attrs.join(' ')} data-value="${cell.value}">${escape(cell.text ?? number.format(cell.value))}</td>`;
}

const rowsOf = (units: readonly Unit[]) => [
  ...units.map((u) => ({ key: u.resh as string | undefined, label: unitLabel(u) })),
  { key: undefined, label: NATIONAL_LABEL },
];

function countTable(table: CountTable, units: readonly Unit[]): string {
  const body = rowsOf(units)
    .map((row) => {
      const cell = unitCell(table, row.key);
      return `<tr${row.key === undefined ? ' class="national"' : ''}><th scope="row">${escape(row.label)}</th>${td({ unit: row.key, statistic: 'persons', value: cell.persons, hidden: cell.hidden })}${td({ unit: row.key, statistic: 'episodes', value: cell.records, hidden: cell.hidden })}</tr>`;
    })
    .join('');
  return `<table data-table="${table.id}"><thead><tr><th>Enhet</th><th>Personer</th><th>Forløp</th></tr></thead><tbody>${body}</tbody></table>`;
}

function statisticTable(table: StatisticTable, units: readonly Unit[]): string {
  const body = rowsOf(units)
    .map((row) => {
      const cell = unitCell(table, row.key);
      const cells = [
        td({ unit: row.key, statistic: 'n', value: cell.records, hidden: cell.hidden }),
        td({ unit: row.key, statistic: 'mean', value: round(cell.mean), hidden: cell.hidden }),
        td({ unit: row.key, statistic: 'median', value: round(cell.median), hidden: cell.hidden }),
      ];
      return `<tr${row.key === undefined ? ' class="national"' : ''}><th scope="row">${escape(row.label)}</th>${cells.join('')}</tr>`;
    })
    .join('');
  return `<table data-table="${table.id}"><thead><tr><th>Enhet</th><th>n</th><th>Snitt (${escape(table.measure)})</th><th>Median</th></tr></thead><tbody>${body}</tbody></table>`;
}

function round(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value * 100) / 100;
}

function distributionTd(
  table: DistributionTable,
  unit: string | undefined,
  category: string | undefined,
  total: PublishedCell,
): string {
  const cell = distributionCell(table, unit, category);
  const share = category === undefined ? undefined : shareOf(cell, total);
  const text =
    cell.records === undefined
      ? undefined
      : share === undefined
        ? number.format(cell.records)
        : `${number.format(cell.records)} (${percent.format(share)})`;
  return td({
    unit,
    category: category ?? 'total',
    statistic: 'episodes',
    value: cell.records,
    hidden: cell.hidden,
    text,
  });
}

function distributionTable(table: DistributionTable, units: readonly Unit[]): string {
  const head = table.categories.map((c) => `<th>${escape(c.label)}</th>`).join('');
  const body = rowsOf(units)
    .map((row) => {
      const total = distributionCell(table, row.key, undefined);
      const cells = [
        ...table.categories.map((c) => distributionTd(table, row.key, c.code, total)),
        distributionTd(table, row.key, undefined, total),
      ];
      if (table.rate !== undefined) {
        const rate = rateOf(table, row.key);
        cells.push(
          td({
            unit: row.key,
            statistic: 'rate',
            value: rate === undefined ? undefined : Math.round(rate * 1000) / 10,
            hidden: rate === undefined && total.records !== 0,
            text: rate === undefined ? undefined : percent.format(rate),
          }),
        );
      }
      return `<tr${row.key === undefined ? ' class="national"' : ''}><th scope="row">${escape(row.label)}</th>${cells.join('')}</tr>`;
    })
    .join('');
  const note = table.note === undefined ? '' : `<p class="note">${escape(table.note)}</p>`;
  const rateHead = table.rate === undefined ? '' : `<th>${escape(table.rate.label)}</th>`;
  return `<table data-table="${table.id}"><thead><tr><th>Enhet</th>${head}<th>Totalt</th>${rateHead}</tr></thead><tbody>${body}</tbody></table>${note}`;
}

async function tableBlock(table: ReportTable, units: readonly Unit[]): Promise<string> {
  switch (table.kind) {
    case 'count':
      return `<h3>${escape(table.title)}</h3>${countTable(table, units)}`;
    case 'statistic':
      return `<h3>${escape(table.title)}</h3><figure>${await statisticChart(table, units)}</figure>${statisticTable(table, units)}`;
    case 'distribution':
      return `<h3>${escape(table.title)}</h3><figure>${await distributionChart(table, units)}</figure>${distributionTable(table, units)}`;
  }
}

/** One unit's key figures beside the national ones. */
function unitSection(report: AnnualReport, unit: Unit): string {
  const rows: string[] = [];
  const pair = (
    label: string,
    statistic: string,
    category: string | undefined,
    get: (u: string | undefined) => { value?: number; hidden: boolean; text?: string },
  ) => {
    const mine = get(unit.resh);
    const national = get(undefined);
    rows.push(
      `<tr><th scope="row">${escape(label)}</th>${td({ unit: unit.resh, category, statistic, ...mine })}${td({ unit: undefined, category, statistic, ...national })}</tr>`,
    );
  };
  for (const section of report.sections) {
    for (const table of section.tables) {
      if (table.kind === 'count') {
        pair('Personer', 'persons', undefined, (u) => ({
          value: unitCell(table, u).persons,
          hidden: unitCell(table, u).hidden,
        }));
        pair('Forløp', 'episodes', undefined, (u) => ({
          value: unitCell(table, u).records,
          hidden: unitCell(table, u).hidden,
        }));
      } else if (table.kind === 'statistic') {
        pair(`${table.title}, snitt`, 'mean', undefined, (u) => ({
          value: round(unitCell(table, u).mean),
          hidden: unitCell(table, u).hidden,
        }));
      } else {
        for (const c of table.categories) {
          pair(`${table.title}: ${c.label}`, 'share', c.code, (u) => {
            const total = distributionCell(table, u, undefined);
            const cell = distributionCell(table, u, c.code);
            const share = shareOf(cell, total);
            return {
              value: share === undefined ? undefined : Math.round(share * 1000) / 10,
              hidden: cell.hidden || total.hidden,
              text: share === undefined ? undefined : percent.format(share),
            };
          });
        }
      }
    }
  }
  return `<section class="unit" id="unit-${unit.resh}"><h2>${escape(unit.name)}</h2><table data-table="unit-${unit.resh}"><thead><tr><th></th><th>${escape(unitLabel(unit))}</th><th>${NATIONAL_LABEL}</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

const STYLE = `
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.8em}h2{border-bottom:2px solid #4c78a8;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th[scope=row],thead th:first-child{text-align:left}tr.national{font-weight:bold;background:#fdf1e6}
td.suppressed{color:#a33;text-align:center}.note,.legend{font-size:.85em;color:#555}figure{margin:.5em 0}
@media print{h2{page-break-before:always}section.unit{page-break-inside:avoid}}`;

export async function renderHtml(report: AnnualReport): Promise<string> {
  const made = report.made.slice(0, 10);
  const sections: string[] = [];
  for (const section of report.sections) {
    const tables: string[] = [];
    for (const table of section.tables) tables.push(await tableBlock(table, report.shownUnits));
    sections.push(
      `<section id="${section.id}"><h2>${escape(section.title)}</h2><p>${escape(section.text)}</p>${tables.join('')}</section>`,
    );
  }
  const units = report.shownUnits.map((u) => unitSection(report, u)).join('');
  return `<!doctype html>
<html lang="nb"><head><meta charset="utf-8"><meta name="report-made" content="${report.made}">
<title>NorPain – årsrapport ${report.year}</title><style>${STYLE}</style></head>
<body><header><h1>NorPain – årsrapport ${report.year}</h1>
<p>Nasjonalt kvalitetsregister for smerteklinikker. Laget <time datetime="${report.made}">${made}</time>.</p>
<p class="legend">Tegnforklaring: <strong>${SUPPRESSION_MARK}</strong> = skjult for personvern: færre enn ${THRESHOLD} personer, eller skjult for at en annen skjult verdi ikke skal kunne regnes ut fra totalene. – = ingen data.</p></header>
<main>${sections.join('')}<h2>Enhetene</h2>${units}</main></body></html>
`;
}
