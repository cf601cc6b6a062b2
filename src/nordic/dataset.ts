import type {
  EpisodeOfCare,
  Patient,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
} from '@medplum/fhirtypes';
import { EPISODE_EXTENSIONS } from '../dictionary/dictionary';
import { parseReference } from '../fhir/reference';
import type { FhirStore } from '../store/FhirStore';
import { scanResources } from '../store/scan';
import { episodesOverlapping } from '../coverage/coverage';
import type { Unit } from '../units/units';
import { NORPAIN_QUESTIONNAIRE_URLS } from '../validation/questionnaire';
import { sexCategory, type QuasiIdentifiers } from './anonymise';

/**
 * The agreed variables of the Nordic dataset (issue 15), one row per episode that started (first
 * consultation) in the year at a participating unit: sex, age at the start, the unit's health region,
 * the year, and the main scores of the baseline form and the 12-month form, as the server computed them.
 * No id of any kind, no date finer than the year.
 *
 * Which forms belong to an episode: the person's latest baseline answered from 60 days before the
 * referral until 30 days after the first consultation, and their 12-month form answered from 9 to 18
 * months after the episode ended.
 */
const BASELINE = NORPAIN_QUESTIONNAIRE_URLS.baseline;
const FOLLOW_UP = NORPAIN_QUESTIONNAIRE_URLS.followUp12m;

export interface ScoreVariable {
  name: string;
  questionnaire: typeof BASELINE | typeof FOLLOW_UP;
  linkId: string;
  description: string;
  values: string;
}

export const SCORES: readonly ScoreVariable[] = [
  score(
    'pain_intensity_0',
    BASELINE,
    'smerteintensitet',
    'pain intensity, mean of the four NRS items',
    '0-10',
  ),
  score('bpi_interference_0', BASELINE, 'bpi-paavirkning', 'BPI pain interference, mean of 7 items', '0-10'),
  score('hscl25_0', BASELINE, 'hscl-25-total', 'HSCL-25 psychological distress, mean', '1-4'),
  score('isi_0', BASELINE, 'isi-sum', 'Insomnia Severity Index, sum', '0-28'),
  score('fatigue_0', BASELINE, 'cfq-total', 'Chalder fatigue, Likert sum', '0-33'),
  score('eq5d_vas_0', BASELINE, 'eq5d-vas', 'EQ VAS, health today', '0-100'),
  score('pain_intensity_12', FOLLOW_UP, 'smerteintensitet', 'pain intensity at 12 months', '0-10'),
  score('bpi_interference_12', FOLLOW_UP, 'bpi-paavirkning', 'BPI pain interference at 12 months', '0-10'),
  score('hscl25_12', FOLLOW_UP, 'hscl-25-total', 'HSCL-25 at 12 months', '1-4'),
  score('isi_12', FOLLOW_UP, 'isi-sum', 'Insomnia Severity Index at 12 months', '0-28'),
  score('pgic_12', FOLLOW_UP, 'pgic-global', 'PGIC, 1 very much better ... 7 very much worse', '1-7'),
];

function score(
  name: string,
  questionnaire: ScoreVariable['questionnaire'],
  linkId: string,
  description: string,
  values: string,
): ScoreVariable {
  return { name, questionnaire, linkId, description, values };
}

export interface NordicRow extends QuasiIdentifiers {
  scores: Record<string, number | undefined>;
}

interface Answered {
  authored: string;
  scores: Record<string, number | undefined>;
}

export async function nordicRows(
  store: FhirStore,
  year: number,
  units: readonly Unit[],
): Promise<NordicRow[]> {
  const regionOf = new Map(units.map((u) => [u.resh, u.region ?? 'unknown']));
  const episodes: { patient: string; unit: string; referral: string; start: string; end?: string }[] = [];
  // Those that overlap the year: a superset of those started in it.
  for await (const episode of scanResources<EpisodeOfCare>(store, episodesOverlapping(year))) {
    const unit = episode.managingOrganization?.identifier?.value;
    const start = episode.period?.start?.slice(0, 10);
    const patient = patientId(episode.patient?.reference);
    if (unit !== undefined && regionOf.has(unit) && start?.startsWith(`${year}-`) && patient !== undefined) {
      const referral =
        episode.extension?.find((e) => e.url === EPISODE_EXTENSIONS.referralDate)?.valueDate ?? start;
      episodes.push({ patient, unit, referral, start, end: episode.period?.end?.slice(0, 10) });
    }
  }
  // The persons' Patients and forms, each read in one pass over its type (a round trip per person
  // would cost more than reading them all at a registry's size).
  const people = new Map<string, { patient: Patient; forms: Map<string, Answered[]> }>();
  for (const episode of episodes) {
    people.set(episode.patient, { patient: { resourceType: 'Patient' }, forms: new Map() });
  }
  for await (const patient of scanResources<Patient>(store, { resourceType: 'Patient' })) {
    const person = people.get(patient.id ?? '');
    if (person !== undefined) {
      person.patient = { resourceType: 'Patient', gender: patient.gender, birthDate: patient.birthDate };
    }
  }
  for await (const response of scanResources<QuestionnaireResponse>(store, {
    resourceType: 'QuestionnaireResponse',
  })) {
    const person = people.get(patientId(response.subject?.reference) ?? '');
    const url = response.questionnaire?.split('|')[0];
    const variables = SCORES.filter((v) => v.questionnaire === url);
    if (
      person === undefined ||
      url === undefined ||
      variables.length === 0 ||
      response.authored === undefined
    ) {
      continue;
    }
    const scores = Object.fromEntries(variables.map((v) => [v.name, valueOf(response.item, v.linkId)]));
    const list = person.forms.get(url) ?? [];
    list.push({ authored: response.authored.slice(0, 10), scores });
    person.forms.set(url, list);
  }
  return episodes.map((episode) => {
    const person = people.get(episode.patient);
    const baseline = latestWithin(
      person?.forms.get(BASELINE),
      addDays(episode.referral, -60),
      addDays(episode.start, 30),
    );
    const followUp = episode.end
      ? latestWithin(person?.forms.get(FOLLOW_UP), addMonths(episode.end, 9), addMonths(episode.end, 18))
      : undefined;
    return {
      age: ageAt(person?.patient.birthDate, episode.start),
      sex: sexCategory(person?.patient.gender),
      region: regionOf.get(episode.unit) ?? 'unknown',
      year,
      scores: { ...emptyScores(), ...baseline?.scores, ...followUp?.scores },
    };
  });
}

function emptyScores(): Record<string, undefined> {
  return Object.fromEntries(SCORES.map((s) => [s.name, undefined]));
}

function patientId(reference: string | undefined): string | undefined {
  const parsed = parseReference(reference ?? '');
  return parsed.ok && parsed.reference.kind === 'literal' && parsed.reference.resourceType === 'Patient'
    ? parsed.reference.id
    : undefined;
}

function latestWithin(answered: Answered[] | undefined, from: string, to: string): Answered | undefined {
  return (answered ?? [])
    .filter((a) => a.authored >= from && a.authored <= to)
    .sort((a, b) => a.authored.localeCompare(b.authored))
    .at(-1);
}

/** The first answer's number (decimal, integer, or a coded option's code read as a number). */
function valueOf(items: QuestionnaireResponseItem[] | undefined, linkId: string): number | undefined {
  for (const item of items ?? []) {
    if (item.linkId === linkId) {
      const answer = item.answer?.[0];
      const value = answer?.valueDecimal ?? answer?.valueInteger ?? Number(answer?.valueCoding?.code);
      return value === undefined || Number.isNaN(value) ? undefined : value;
    }
    const nested = valueOf(item.item, linkId);
    if (nested !== undefined) {
      return nested;
    }
  }
  return undefined;
}

/** Whole years from a birth date stored as YYYY-MM (read as the 1st) to the date. */
function ageAt(birthDate: string | undefined, date: string): number | undefined {
  const match = /^(\d{4})-(\d{2})/.exec(birthDate ?? '');
  if (!match) {
    return undefined;
  }
  const [y, m] = date.split('-').map(Number);
  return y - Number(match[1]) - (m < Number(match[2]) ? 1 : 0);
}

const addDays = (date: string, n: number): string =>
  new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

function addMonths(date: string, n: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 10);
}
