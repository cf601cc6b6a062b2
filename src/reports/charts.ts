import * as vega from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import { compile } from 'vega-lite';
import type { Unit } from '../units/units';
import { distributionCell, shareOf, unitCell, type DistributionTable, type StatisticTable } from './annual';

/**
 * The report's charts as SVG, made on the server with Vega-Lite (compiled to Vega, rendered headless):
 * only figures the suppression rule shows are drawn; a hidden unit is named with "skjult" and no bar,
 * so a chart never shows more than its table.
 */

export const NATIONAL_LABEL = 'Nasjonalt';
const HIDDEN_LABEL = 'skjult';

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const rows = (units: readonly Unit[]) => [
  ...units.map((u) => ({ key: u.resh as string | undefined, label: u.alias ?? u.name })),
  { key: undefined, label: NATIONAL_LABEL },
];

/** Mean per unit as bars, the national mean beside them; hidden units labelled. */
export function statisticChart(table: StatisticTable, units: readonly Unit[]): Promise<string> {
  const values = rows(units).map((row) => {
    const cell = unitCell(table, row.key);
    return {
      unit: row.label,
      mean: cell.mean === undefined ? null : Math.round(cell.mean * 100) / 100,
      note: cell.hidden ? HIDDEN_LABEL : cell.mean === undefined ? 'ingen svar' : '',
      national: row.key === undefined,
    };
  });
  const order = values.map((v) => v.unit);
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: 420,
    height: { step: 22 },
    data: { values },
    encoding: {
      y: { field: 'unit', type: 'nominal', sort: order, title: null },
    },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'mean', type: 'quantitative', title: `snitt (${table.measure})` },
          color: {
            field: 'national',
            type: 'nominal',
            scale: { domain: [false, true], range: ['#4c78a8', '#f58518'] },
            legend: null,
          },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 4 },
        encoding: { x: { datum: 0 }, text: { field: 'note' } },
      },
    ],
  });
}

/** Shares of each category per unit as stacked bars, national last; hidden units labelled. */
export function distributionChart(table: DistributionTable, units: readonly Unit[]): Promise<string> {
  const values: { unit: string; category: string; rank: number; share: number | null; note: string }[] = [];
  for (const row of rows(units)) {
    const total = distributionCell(table, row.key, undefined);
    const shares = table.categories.map((c) => shareOf(distributionCell(table, row.key, c.code), total));
    const complete = !total.hidden && shares.every((s) => s !== undefined);
    table.categories.forEach((c, i) => {
      values.push({
        unit: row.label,
        category: c.label,
        rank: i,
        share: complete ? Math.round((shares[i] as number) * 1000) / 10 : null,
        note: i === 0 && !complete ? (total.records === 0 ? 'ingen' : HIDDEN_LABEL) : '',
      });
    });
  }
  const order = rows(units).map((r) => r.label);
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: 420,
    height: { step: 22 },
    data: { values },
    encoding: { y: { field: 'unit', type: 'nominal', sort: order, title: null } },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: {
            field: 'share',
            type: 'quantitative',
            stack: 'zero',
            title: 'prosent',
            scale: { domain: [0, 100] },
          },
          color: {
            field: 'category',
            type: 'nominal',
            sort: table.categories.map((c) => c.label),
            title: null,
          },
          // The stack follows the categories' own order (the scale's), by their index: Vega-Lite has no order
          // for a nominal field.
          order: { field: 'rank', type: 'quantitative' },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 4 },
        encoding: { x: { datum: 0 }, text: { field: 'note' } },
      },
    ],
  });
}
