import type { Observation } from '../statistics/cube';
import type { Episode } from '../statistics/episodes';
import { cellAt, publishTable, type PublishedCell, type PublishedTable } from '../statistics/publish';
import type { Unit } from '../units/units';
import { NORPAIN_QUESTIONNAIRE_URLS } from '../validation/questionnaire';
import type { Coverage } from './coverage';

/**
 * The annual report's figures (issue 15, DESIGN §9), computed from the episodes and published through
 * the one suppression rule (src/statistics/suppression.ts): every table is a PublishedTable over the
 * units (and, for a distribution, its categories), so each unit stands beside the national figure and
 * no hidden cell follows from the totals shown. HTML, CSV and charts only render what is here.
 *
 * Which episodes a year holds: those referred in the year (activity, baseline, waiting times); for the
 * 12-month follow-up, those that ended the year before (their follow-up falls due in the year).
 */

const BASELINE_QUESTIONNAIRE = NORPAIN_QUESTIONNAIRE_URLS.baseline;
const FOLLOW_UP_QUESTIONNAIRE = NORPAIN_QUESTIONNAIRE_URLS.followUp12m;
const base = (linkId: string) => `${BASELINE_QUESTIONNAIRE}#${linkId}`;
const follow = (linkId: string) => `${FOLLOW_UP_QUESTIONNAIRE}#${linkId}`;

/** Persons and episodes per unit: the published cells of a [unit] table. */
export interface CountTable {
  kind: 'count';
  id: string;
  title: string;
  table: PublishedTable;
}

/** A mean or median per unit of one variable: the published cells of a [unit] table. */
export interface StatisticTable {
  kind: 'statistic';
  id: string;
  title: string;
  /** What the number is (scale, unit). */
  measure: string;
  table: PublishedTable;
}

/** A distribution per unit over categories: the published cells of a [unit × category] table. */
export interface DistributionTable {
  kind: 'distribution';
  id: string;
  title: string;
  categories: readonly { code: string; label: string }[];
  table: PublishedTable;
  /** A national row of its own ([category]) where the national figure is not the units' sum (coverage). */
  national?: PublishedTable;
  /** A rate shown beside the counts: the share of these categories together (coverage). */
  rate?: { label: string; categories: readonly string[] };
  note?: string;
}

export type ReportTable = CountTable | StatisticTable | DistributionTable;

export interface ReportSection {
  id: string;
  title: string;
  text: string;
  tables: ReportTable[];
}

export interface AnnualReport {
  year: number;
  /** When the report was made (ISO date-time). */
  made: string;
  units: readonly Unit[];
  /** Unit sections: all units, or the one `--unit` asked for. */
  shownUnits: readonly Unit[];
  sections: ReportSection[];
}

/** The baseline instruments, their scales and the cut-offs of the reference (norpain-instruments.md). */
interface Instrument {
  id: string;
  title: string;
  variable: string;
  measure: string;
  cutOff?: { categories: { code: string; label: string; test(v: number): boolean }[]; note: string };
}

const INSTRUMENTS: Instrument[] = [
  {
    id: 'pain',
    title: 'Smerteintensitet (NRS, snitt av fire spørsmål)',
    variable: base('smerteintensitet'),
    measure: '0–10',
  },
  {
    id: 'interference',
    title: 'Smertenes påvirkning på hverdagen (BPI)',
    variable: base('bpi-paavirkning'),
    measure: '0–10',
  },
  {
    id: 'distress',
    title: 'Psykiske plager (HSCL-25)',
    variable: base('hscl-25-total'),
    measure: 'snitt 1–4',
    cutOff: {
      categories: [
        { code: 'below', label: 'under 1,75', test: (v) => v < 1.75 },
        { code: 'case', label: '1,75 eller mer', test: (v) => v >= 1.75 },
      ],
      note: 'HSCL-25 snitt ≥ 1,75 regnes som betydelige psykiske plager.',
    },
  },
  {
    id: 'insomnia',
    title: 'Søvnvansker (ISI)',
    variable: base('isi-sum'),
    measure: 'sum 0–28',
    cutOff: {
      categories: [
        { code: 'none', label: 'ingen (0–7)', test: (v) => v <= 7 },
        { code: 'sub', label: 'under terskel (8–14)', test: (v) => v >= 8 && v <= 14 },
        { code: 'moderate', label: 'moderat (15–21)', test: (v) => v >= 15 && v <= 21 },
        { code: 'severe', label: 'alvorlig (22–28)', test: (v) => v >= 22 },
      ],
      note: 'ISI-sum: 0–7 ingen klinisk insomni, 8–14 under terskel, 15–21 moderat, 22–28 alvorlig.',
    },
  },
  {
    id: 'fatigue',
    title: 'Utmattelse (Chalder, bimodal skår)',
    variable: base('cfq-bimodal'),
    measure: '0–11',
    cutOff: {
      categories: [
        { code: 'below', label: 'under 4', test: (v) => v < 4 },
        { code: 'case', label: '4 eller mer', test: (v) => v >= 4 },
      ],
      note: 'Bimodal skår ≥ 4 regnes som kasus (utmattelse).',
    },
  },
  {
    id: 'hrqol',
    title: 'Helserelatert livskvalitet (EQ VAS)',
    variable: base('eq5d-vas'),
    measure: '0–100',
  },
];

/** Every variable the report reads (so the reader keeps only these answers). */
export const REPORT_VARIABLES: readonly string[] = [
  ...INSTRUMENTS.map((i) => i.variable),
  follow('smerteintensitet'),
  follow('bpi-paavirkning'),
  follow('pgic-global'),
];

export const REPORT_FORMS: readonly string[] = [BASELINE_QUESTIONNAIRE, FOLLOW_UP_QUESTIONNAIRE];

/** Days between two dates (YYYY-MM-DD). */
function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(to.slice(0, 10)) - Date.parse(from.slice(0, 10))) / 86_400_000);
}

/** Working days (Monday-Friday) after `from` up to and including `to`. Public holidays are not counted
 * out: the reference gives no calendar, so a few deadlines around Easter and Christmas read as met late. */
function workingDaysBetween(from: string, to: string): number {
  let count = 0;
  const day = new Date(`${from.slice(0, 10)}T00:00:00Z`);
  const end = Date.parse(`${to.slice(0, 10)}T00:00:00Z`);
  while (day.getTime() < end) {
    day.setUTCDate(day.getUTCDate() + 1);
    const weekday = day.getUTCDay();
    if (weekday !== 0 && weekday !== 6) count++;
  }
  return count;
}

/** pasient- og brukerrettighetsloven § 2-2: a referral is assessed within 10 working days. */
const ASSESSMENT_DEADLINE_WORKING_DAYS = 10;

export function buildAnnualReport(input: {
  year: number;
  episodes: readonly Episode[];
  units: readonly Unit[];
  shownUnits?: readonly Unit[];
  coverage?: Coverage;
  made?: Date;
}): AnnualReport {
  const { year, units } = input;
  const unitDim = { name: 'unit', values: units.map((u) => u.resh) };
  const ofYear = input.episodes.filter((e) => e.year === year);
  const dueFollowUp = input.episodes.filter(
    (e) => e.end !== undefined && Number(e.end.slice(0, 4)) === year - 1,
  );

  const statistic = (id: string, title: string, measure: string, obs: Observation[]): StatisticTable => ({
    kind: 'statistic',
    id,
    title,
    measure,
    table: publishTable([unitDim], obs),
  });
  const distribution = (
    id: string,
    title: string,
    categories: DistributionTable['categories'],
    obs: Observation[],
    note?: string,
  ): DistributionTable => ({
    kind: 'distribution',
    id,
    title,
    categories,
    table: publishTable([unitDim, { name: 'category', values: categories.map((c) => c.code) }], obs),
    note,
  });
  const valued = (episodes: readonly Episode[], value: (e: Episode) => number | undefined): Observation[] =>
    episodes.flatMap((e) => {
      const v = value(e);
      return v === undefined ? [] : [{ person: e.person, at: [e.unit], value: v }];
    });
  const categorised = (
    episodes: readonly Episode[],
    category: (e: Episode) => string | undefined,
  ): Observation[] =>
    episodes.flatMap((e) => {
      const c = category(e);
      return c === undefined ? [] : [{ person: e.person, at: [e.unit, c] }];
    });
  const answered = (form: string) => (e: Episode) => (e.forms.has(form) ? 'yes' : 'no');
  const YES_NO = [
    { code: 'yes', label: 'svart' },
    { code: 'no', label: 'ikke svart' },
  ];

  const sections: ReportSection[] = [];
  sections.push({
    id: 'activity',
    title: 'Pasienter og forløp',
    text: `Personer med et forløp henvist i ${year}, og forløpene deres. En person med forløp ved to enheter telles ved begge.`,
    tables: [
      {
        kind: 'count',
        id: 'persons',
        title: 'Personer og forløp',
        table: publishTable(
          [unitDim],
          ofYear.map((e) => ({ person: e.person, at: [e.unit] })),
        ),
      },
    ],
  });

  const coverageTables: ReportTable[] = [];
  if (input.coverage !== undefined) {
    const groups = [
      { code: 'both', label: 'i begge' },
      { code: 'registryOnly', label: 'bare i registeret' },
      { code: 'nprOnly', label: 'bare i NPR' },
    ] as const;
    const obs: Observation[] = [];
    for (const [resh, counts] of Object.entries(input.coverage.units)) {
      for (const group of groups) {
        for (let i = 0; i < counts[group.code]; i++)
          obs.push({ person: `${resh}/${group.code}/${i}`, at: [resh, group.code] });
      }
    }
    const nationalObs: Observation[] = groups.flatMap((group) =>
      Array.from({ length: input.coverage?.national[group.code] ?? 0 }, (_, i) => ({
        person: `national/${group.code}/${i}`,
        at: [group.code],
      })),
    );
    coverageTables.push({
      ...distribution(
        'coverage',
        'Dekningsgrad mot Norsk pasientregister',
        groups,
        obs,
        'Dekningsgrad = (bare i registeret + i begge) / alle tre. Nasjonalt er personene koblet på tvers av enhetene.',
      ),
      national: publishTable([{ name: 'category', values: groups.map((g) => g.code) }], nationalObs),
      rate: { label: 'dekningsgrad', categories: ['both', 'registryOnly'] },
    });
  }
  sections.push({
    id: 'coverage',
    title: 'Dekningsgrad',
    text:
      input.coverage === undefined
        ? `Dekningsgraden for ${year} er ikke målt (norpain coverage har ikke laget tall for året).`
        : `Personer i registeret og i NPR-uttrekket for ${year}, koblet på personnivå.`,
    tables: coverageTables,
  });

  sections.push({
    id: 'response',
    title: 'Svarprosent',
    text: `Baseline: forløp henvist i ${year} med rett til helsehjelp. 12 måneder: forløp avsluttet i ${year - 1}.`,
    tables: [
      distribution(
        'response-baseline',
        'Svar på baseline-skjemaet',
        YES_NO,
        categorised(
          ofYear.filter((e) => e.decision === 'granted'),
          answered(BASELINE_QUESTIONNAIRE),
        ),
      ),
      distribution(
        'response-followup',
        'Svar på 12-månedersskjemaet',
        YES_NO,
        categorised(dueFollowUp, answered(FOLLOW_UP_QUESTIONNAIRE)),
      ),
    ],
  });

  sections.push({
    id: 'baseline',
    title: 'Pasientene ved baseline',
    text: 'Skårer fra baseline-skjemaet, med instrumentenes grenseverdier der de finnes.',
    tables: INSTRUMENTS.flatMap((instrument): ReportTable[] => {
      const values = valued(ofYear, (e) => e.answers.get(instrument.variable));
      const tables: ReportTable[] = [statistic(instrument.id, instrument.title, instrument.measure, values)];
      const cutOff = instrument.cutOff;
      if (cutOff !== undefined) {
        tables.push(
          distribution(
            `${instrument.id}-cutoff`,
            `${instrument.title}: grenseverdier`,
            cutOff.categories,
            categorised(ofYear, (e) => {
              const v = e.answers.get(instrument.variable);
              return v === undefined ? undefined : cutOff.categories.find((c) => c.test(v))?.code;
            }),
            cutOff.note,
          ),
        );
      }
      return tables;
    }),
  });

  const change = (variable: string) => (e: Episode) => {
    const before = e.answers.get(base(variable));
    const after = e.answers.get(follow(variable));
    return before === undefined || after === undefined ? undefined : Math.round((after - before) * 100) / 100;
  };
  sections.push({
    id: 'outcomes',
    title: 'Resultater etter 12 måneder',
    text: `Forløp avsluttet i ${year - 1} med svar både ved baseline og etter 12 måneder. Negativ endring er bedring.`,
    tables: [
      statistic(
        'pain-change',
        'Endring i smerteintensitet',
        'NRS-poeng',
        valued(dueFollowUp, change('smerteintensitet')),
      ),
      distribution(
        'pain-reduction',
        'Reduksjon i smerteintensitet',
        [
          { code: 'substantial', label: 'minst 30 %' },
          { code: 'less', label: 'under 30 %' },
        ],
        categorised(dueFollowUp, (e) => {
          const before = e.answers.get(base('smerteintensitet'));
          const after = e.answers.get(follow('smerteintensitet'));
          if (before === undefined || after === undefined || before === 0) return undefined;
          return (before - after) / before >= 0.3 ? 'substantial' : 'less';
        }),
        'IMMPACT: minst 30 % reduksjon er en moderat, klinisk viktig bedring.',
      ),
      statistic(
        'interference-change',
        'Endring i påvirkning (BPI)',
        'BPI-poeng',
        valued(dueFollowUp, change('bpi-paavirkning')),
      ),
      distribution(
        'pgic',
        'Pasientens globale inntrykk av endring (PGIC)',
        [
          { code: 'much-better', label: 'mye eller svært mye bedre' },
          { code: 'better', label: 'litt bedre' },
          { code: 'same', label: 'uendret' },
          { code: 'worse', label: 'verre' },
        ],
        categorised(dueFollowUp, (e) => {
          const v = e.answers.get(follow('pgic-global'));
          if (v === undefined) return undefined;
          return v <= 2 ? 'much-better' : v === 3 ? 'better' : v === 4 ? 'same' : 'worse';
        }),
        'Mye eller svært mye bedre regnes som respons (Farrar/IMMPACT).',
      ),
    ],
  });

  const decided = ofYear.filter((e) => e.referral !== undefined && e.decisionDate !== undefined);
  const withDeadline = ofYear.filter(
    (e) => e.decision === 'granted' && e.deadline !== undefined && e.start !== undefined,
  );
  sections.push({
    id: 'waiting',
    title: 'Ventetider',
    text:
      `Henvisning → vurdering av rett til helsehjelp (frist ${ASSESSMENT_DEADLINE_WORKING_DAYS} virkedager, pasient- og brukerrettighetsloven § 2-2) → ` +
      'første konsultasjon (innen den individuelle fristen i vedtaket). Virkedager er mandag–fredag; helligdager er ikke trukket fra.',
    tables: [
      statistic(
        'to-decision',
        'Dager fra henvisning til vurdering',
        'dager',
        valued(decided, (e) => daysBetween(e.referral as string, e.decisionDate as string)),
      ),
      distribution(
        'decision-deadline',
        'Vurdert innen 10 virkedager',
        [
          { code: 'within', label: 'innen fristen' },
          { code: 'late', label: 'etter fristen' },
        ],
        categorised(decided, (e) =>
          workingDaysBetween(e.referral as string, e.decisionDate as string) <=
          ASSESSMENT_DEADLINE_WORKING_DAYS
            ? 'within'
            : 'late',
        ),
      ),
      statistic(
        'to-start',
        'Dager fra henvisning til første konsultasjon',
        'dager',
        valued(
          ofYear.filter((e) => e.referral !== undefined && e.start !== undefined),
          (e) => daysBetween(e.referral as string, e.start as string),
        ),
      ),
      distribution(
        'start-deadline',
        'Første konsultasjon innen fristen i vedtaket',
        [
          { code: 'within', label: 'innen fristen' },
          { code: 'late', label: 'etter fristen' },
        ],
        categorised(withDeadline, (e) => ((e.start as string) <= (e.deadline as string) ? 'within' : 'late')),
      ),
    ],
  });

  return {
    year,
    made: (input.made ?? new Date()).toISOString(),
    units,
    shownUnits: input.shownUnits ?? units,
    sections,
  };
}

/** A unit's cell of a count or statistic table (undefined: national). */
export function unitCell(table: CountTable | StatisticTable, unit: string | undefined): PublishedCell {
  return cellAt(table.table, { unit });
}

/** A unit's cell of one category (undefined category: the unit's total; undefined unit: national). */
export function distributionCell(
  table: DistributionTable,
  unit: string | undefined,
  category: string | undefined,
): PublishedCell {
  return unit === undefined && table.national !== undefined
    ? cellAt(table.national, { category })
    : cellAt(table.table, { unit, category });
}

/** A table's rate for a unit (undefined: national): shown only where its categories and total are. */
export function rateOf(table: DistributionTable, unit: string | undefined): number | undefined {
  if (table.rate === undefined) return undefined;
  const total = distributionCell(table, unit, undefined);
  const parts = table.rate.categories.map((c) => distributionCell(table, unit, c));
  if (total.records === undefined || total.records === 0 || parts.some((p) => p.records === undefined))
    return undefined;
  return parts.reduce((sum, p) => sum + (p.records as number), 0) / total.records;
}

/** The share a shown cell's episodes are of its shown total's, or undefined when either is hidden or 0. */
export function shareOf(cell: PublishedCell, total: PublishedCell): number | undefined {
  return cell.records === undefined || total.records === undefined || total.records === 0
    ? undefined
    : cell.records / total.records;
}
