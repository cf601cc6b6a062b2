import type { PlannedAnswer, PlannedItem } from './plan';
import { plannedNumber, plannedSum, range } from './plan';

const coding = (...codes: string[]): PlannedAnswer => ({ kind: 'coding', codes });
const integer = (value: number): PlannedAnswer => ({ kind: 'integer', value });
// Yes/no questions are Ja/Nei options (v2-0136 Y/N), so a person can answer either in every renderer.
const yes = coding('Y');
const no = coding('N');

/**
 * The answers to the branching questions of each patient form, chosen so that each form both opens
 * and closes dependants, with «Ja» and «Nei» each given somewhere. Baseline: no children (closes «how
 * many?»), part time and disability benefit (opens percentage, which benefit, what degree), already
 * receives uføretrygd, pain after an accident (what kind?). Follow-up: other treatment since (which?),
 * full time without benefits (closes the benefit questions).
 */
const pain: Record<string, PlannedAnswer> = {
  smertesteder: coding('nakke', 'korsrygg', 'skulder-h', 'hofte-v', 'lar-h'),
  'nrs-verst': integer(8),
  'nrs-minst': integer(3),
  'nrs-gjennomsnitt': integer(6),
  'nrs-naa': integer(5),
  'eq5d-vas': integer(55),
};

export const baselineChoices: Record<string, PlannedAnswer> = {
  'har-barn': no,
  hoyde: integer(172),
  vekt: integer(80),
  arbeidssituasjon: coding('deltid', 'ytelser'),
  stillingsprosent: integer(50),
  trygdeytelser: coding('ufoeretrygd'),
  ufoeregrad: integer(50),
  'soknad-ufoeretrygd': coding('mottar'),
  smerteaar: integer(6),
  smerteutlosning: coding('ulykke'),
  ulykketype: coding('trafikk'),
  ...pain,
};

export const followupChoices: Record<string, PlannedAnswer> = {
  'pgic-global': coding('2'),
  tilfredshet: integer(7),
  'ny-behandling': yes,
  'ny-behandling-hva': coding('fysioterapi', 'psykolog'),
  arbeidssituasjon: coding('heltid'),
  stillingsprosent: integer(100),
  'soknad-ufoeretrygd': coding('nei'),
  ...pain,
};

/**
 * Scores the server must compute from the planned answers, worked out here from the instruments'
 * rules (not with the Questionnaire's FHIRPath), so the server's recomputation is checked for real.
 */
export function expectedScores(plan: PlannedItem[], form: 'baseline' | 'followup'): Record<string, unknown> {
  const nrs = plannedSum(plan, ['nrs-verst', 'nrs-minst', 'nrs-gjennomsnitt', 'nrs-naa']) / 4;
  const painSites = plan.find((p) => p.item.linkId === 'smertesteder')?.answer;
  // Every region ticked counts; «no pain in the last week» (code `ingen`) is not a region.
  const scores: Record<string, unknown> = {
    smerteintensitet: nrs,
    'antall-smertesteder':
      painSites?.kind === 'coding' ? painSites.codes.filter((c) => c !== 'ingen').length : undefined,
    'isi-sum': plannedSum(plan, range('isi-', 1, 7)),
    'eq5d-nivasum': plannedSum(plan, range('eq5d-', 1, 5)),
    // All 13 answered: the prorated sum (sum × 13 / answered) is the plain sum.
    'pcs-total': plannedSum(plan, range('pcs-', 1, 13)),
    'cfq-total': plannedSum(plan, range('cfq-', 1, 11)),
    'bpi-paavirkning': round(plannedSum(plan, range('bpi-', 1, 7)) / 7, 2),
  };
  if (form === 'baseline') {
    const metres = plannedNumber(plan, 'hoyde') / 100;
    scores.kmi = round(plannedNumber(plan, 'vekt') / (metres * metres), 1);
  } else {
    scores['pgic-responder'] = ['1', '2'].includes(String(plannedNumber(plan, 'pgic-global')));
  }
  return scores;
}

function round(value: number, places: number): number {
  return Number(value.toFixed(places));
}
