import type {
  EpisodeOfCare,
  Extension,
  Patient,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Resource,
} from '@medplum/fhirtypes';
import { EPISODE_EXTENSIONS } from '../dictionary/dictionary';
import { parseReference } from '../fhir/reference';
import { AGE_BAND_URL } from '../research/project';
import { RESH_SYSTEM } from '../units/units';
import { NORPAIN_QUESTIONNAIRE_URLS } from '../validation/questionnaire';

/**
 * The registry's unit of analysis, the episode (a course of treatment at a pain clinic), with what the
 * statistics and the annual report count about it: the person (only to count persons; never published),
 * the unit, the waiting-time dates, the person's sex and age band, and the answers of the
 * Questionnaires that belong to it. Read from any stream of stored or study-view resources.
 */

/** Sex as published: 'other' holds other and unknown (and a view without sex), too few to show apart. */
export const SEXES = ['female', 'male', 'other'] as const;
/** Age at referral in the bands the registry publishes (persons are included from 18). */
export const AGE_BANDS = ['18-29', '30-39', '40-49', '50-59', '60-69', '70+'] as const;
/** The age band of a person whose age the view does not hold, and the unit of an episode whose unit it
 * does not hold: counted there, so that totals are whole. */
export const UNKNOWN = 'unknown';

export interface Episode {
  person: string;
  unit: string;
  /** The year the episode belongs to: the year of its referral. */
  year: number;
  sex: string;
  /** AGE_BANDS at referral (staff), the study's band (`low-high`, a study view), or UNKNOWN. */
  ageBand: string;
  referral?: string;
  decision?: 'granted' | 'not-granted';
  decisionDate?: string;
  deadline?: string;
  /** First consultation. */
  start?: string;
  end?: string;
  /** The Questionnaires (canonical url) answered for this episode. */
  forms: Set<string>;
  /** Answers by variable (`<Questionnaire url>#<linkId>`), numbers only. */
  answers: Map<string, number>;
}

/** Where the resources come from: the store (staff) or a study's view (researchers). */
export type ResourceStream = (
  type: 'Patient' | 'EpisodeOfCare' | 'QuestionnaireResponse',
) => AsyncIterable<Resource>;

export interface ReadOptions {
  /** Variables whose answers are kept (`<url>#<linkId>`); others are not held in memory. */
  variables: ReadonlySet<string>;
  /** Questionnaires (canonical url) whether answered is wanted, without their answers. */
  forms?: readonly string[];
  /** Called after each resource read, for a progress bar. */
  progress?: (type: string) => void;
}

/** Reads the episodes with their persons' sex and age band and the answers wanted. */
export async function readEpisodes(stream: ResourceStream, options: ReadOptions): Promise<Episode[]> {
  const persons = new Map<string, Person>();
  for await (const resource of stream('Patient')) {
    const patient = resource as Patient;
    if (patient.id) {
      persons.set(patient.id, {
        sex: sexOf(patient.gender),
        birth: patient.birthDate,
        band: studyBandOf(patient.extension),
      });
    }
    options.progress?.('Patient');
  }
  const byPerson = new Map<string, Episode[]>();
  const episodes: Episode[] = [];
  for await (const resource of stream('EpisodeOfCare')) {
    options.progress?.('EpisodeOfCare');
    const episode = episodeOf(resource as EpisodeOfCare, persons);
    if (episode === undefined) continue;
    episodes.push(episode);
    byPerson.set(episode.person, [...(byPerson.get(episode.person) ?? []), episode]);
  }
  for (const list of byPerson.values())
    list.sort((a, b) => (a.referral ?? '').localeCompare(b.referral ?? ''));
  const questionnaires = new Set(
    [...options.variables, ...(options.forms ?? [])].map((v) => v.split('#')[0]),
  );
  // Counts alone need no forms: the responses are not read then.
  const responses: AsyncIterable<Resource> =
    questionnaires.size === 0 ? noResources() : stream('QuestionnaireResponse');
  for await (const resource of responses) {
    options.progress?.('QuestionnaireResponse');
    const response = resource as QuestionnaireResponse;
    const url = response.questionnaire?.split('|')[0];
    if (url === undefined || !questionnaires.has(url)) continue;
    const person = personOf(response.subject?.reference);
    const episode =
      person === undefined ? undefined : episodeFor(byPerson.get(person), url, response.authored);
    if (episode === undefined) continue;
    episode.forms.add(url);
    collectAnswers(response.item ?? [], url, options.variables, episode.answers);
  }
  return episodes;
}

interface Person {
  sex: string;
  birth?: string;
  /** The age band a study view gives instead of the birth date. */
  band?: string;
}

/** A study view's age band (src/research/project.ts): `low-high` years. */
function studyBandOf(extensions: Extension[] | undefined): string | undefined {
  const range = valueOf(extensions, AGE_BAND_URL)?.valueRange;
  return range?.low?.value === undefined || range.high?.value === undefined
    ? undefined
    : `${range.low.value}-${range.high.value}`;
}

async function* noResources(): AsyncIterable<Resource> {}

function sexOf(gender: string | undefined): string {
  return gender === 'female' || gender === 'male' ? gender : 'other';
}

function personOf(reference: string | undefined): string | undefined {
  if (reference === undefined) return undefined;
  const parsed = parseReference(reference);
  return parsed.ok && parsed.reference.kind === 'literal' && parsed.reference.resourceType === 'Patient'
    ? parsed.reference.id
    : undefined;
}

function valueOf(extensions: Extension[] | undefined, url: string): Extension | undefined {
  return extensions?.find((e) => e.url === url);
}

function episodeOf(episode: EpisodeOfCare, persons: ReadonlyMap<string, Person>): Episode | undefined {
  const person = personOf(episode.patient?.reference);
  const identifier = episode.managingOrganization?.identifier;
  const unit = (identifier?.system === RESH_SYSTEM ? identifier.value : undefined) ?? UNKNOWN;
  const referral = valueOf(episode.extension, EPISODE_EXTENSIONS.referralDate)?.valueDate;
  const year = Number((referral ?? episode.period?.start ?? '').slice(0, 4));
  if (person === undefined || !Number.isInteger(year) || year === 0) return undefined;
  const known = persons.get(person);
  const right = valueOf(episode.extension, EPISODE_EXTENSIONS.rightToCare)?.extension;
  const decision = valueOf(right, 'decision')?.valueCoding?.code;
  return {
    person,
    unit,
    year,
    sex: known?.sex ?? 'other',
    ageBand: known?.band ?? ageBandOf(known?.birth, referral ?? episode.period?.start) ?? UNKNOWN,
    referral,
    decision: decision === 'granted' || decision === 'not-granted' ? decision : undefined,
    decisionDate: valueOf(right, 'date')?.valueDate,
    deadline: valueOf(right, 'deadline')?.valueDate,
    start: episode.period?.start?.slice(0, 10),
    end: episode.period?.end?.slice(0, 10),
    forms: new Set(),
    answers: new Map(),
  };
}

/** The AGE_BANDS band of the whole years at `at`, from a birth date held to the month (the day is not
 * stored); none under 18, where no band holds the age. */
function ageBandOf(birth: string | undefined, at: string | undefined): string | undefined {
  if (birth === undefined || at === undefined || birth.length < 7 || at.length < 7) return undefined;
  const months =
    (Number(at.slice(0, 4)) - Number(birth.slice(0, 4))) * 12 +
    Number(at.slice(5, 7)) -
    Number(birth.slice(5, 7));
  const age = Math.floor(months / 12);
  if (age < 18) return undefined;
  return AGE_BANDS[age < 30 ? 0 : Math.min(Math.floor(age / 10) - 2, AGE_BANDS.length - 1)];
}

/**
 * The episode a response belongs to: a 12-month follow-up to the person's latest episode that ended
 * before it was answered; any other form to the latest episode referred on or before it was answered
 * (the baseline is answered after the referral, before the first consultation). The first response of a
 * form to an episode, as stored, counts.
 */
function episodeFor(
  episodes: readonly Episode[] | undefined,
  questionnaire: string,
  authored: string | undefined,
): Episode | undefined {
  if (episodes === undefined || authored === undefined) return undefined;
  const day = authored.slice(0, 10);
  const followUp = questionnaire === NORPAIN_QUESTIONNAIRE_URLS.followUp12m;
  let found: Episode | undefined;
  let foundFrom = '';
  for (const episode of episodes) {
    const from = followUp ? episode.end : openedOn(episode);
    if (from !== undefined && from <= day && from >= foundFrom) {
      found = episode;
      foundFrom = from;
    }
  }
  return found ?? (followUp ? undefined : episodes[0]);
}

/** When the episode began: its referral, or (in a study view that does not show it) its first consultation. */
function openedOn(episode: Episode): string {
  return episode.referral ?? episode.start ?? '';
}

function collectAnswers(
  items: readonly QuestionnaireResponseItem[],
  url: string,
  wanted: ReadonlySet<string>,
  into: Map<string, number>,
): void {
  for (const item of items) {
    const key = `${url}#${item.linkId}`;
    const answer = item.answer?.[0];
    if (answer !== undefined && wanted.has(key) && !into.has(key)) {
      const value = numberOf(answer);
      if (value !== undefined) into.set(key, value);
    }
    collectAnswers(item.item ?? [], url, wanted, into);
    for (const a of item.answer ?? []) collectAnswers(a.item ?? [], url, wanted, into);
  }
}

function numberOf(answer: NonNullable<QuestionnaireResponseItem['answer']>[number]): number | undefined {
  if (answer.valueInteger !== undefined) return answer.valueInteger;
  if (answer.valueDecimal !== undefined) return answer.valueDecimal;
  if (answer.valueBoolean !== undefined) return answer.valueBoolean ? 1 : 0;
  const code = answer.valueCoding?.code;
  return code !== undefined && /^-?\d+(\.\d+)?$/.test(code) ? Number(code) : undefined;
}
