import { createHash } from 'node:crypto';
import type {
  Condition,
  Encounter,
  EpisodeOfCare,
  Patient,
  Procedure,
  QuestionnaireResponse,
  Resource,
} from '@medplum/fhirtypes';
import { UNIT_LABEL_SYSTEM } from '../../src/auth/unitLabel';
import {
  canonicalNationalId,
  containsNationalId,
  Pseudonymiser,
  registryPseudonymSystem,
  seededRandom,
  withCheckDigits,
  type NationalId,
} from '../../src/identity';
import { readUnits, RESH_SYSTEM } from '../../src/units/units';
import { NORPAIN_QUESTIONNAIRE_URLS } from '../../src/validation/questionnaire';
import { answerQuestionnaire } from './answers';

/**
 * The synthetic cohort (issue 13, 15): deterministic synthetic persons with their episodes at the
 * participating units, the first consultation, diagnoses, treatments and the patient-reported forms,
 * every resource exactly as the ingest pipeline stores it (pseudonymised Patient whose only identifier is
 * the registry pseudonym, server-form ids, canonical references, unit labels, dictionary elements only,
 * scores computed by the server's scoring). A few persons have reserved themselves: they are in the
 * reservation register and have no data. Load a cohort into a DATA_DIR with ./load.ts (or this file's
 * command line, at the bottom).
 */
export interface CohortOptions {
  persons: number;
  seed: number;
  /** Referrals fall in fromYear..toYear; the cohort is seen as at the end of toYear. */
  fromYear: number;
  toYear: number;
  /** RESH ids of the units episodes are at (default: every participating unit of config/units.json). */
  units?: readonly string[];
  /** Share of persons who have reserved themselves (default SHARES.reserved). */
  reservedShare?: number;
  /** Makes the pseudonyms; a key derived from the seed when absent (the loader passes DATA_DIR's). */
  pseudonymiser?: Pseudonymiser;
}

export interface CohortEpisode {
  id: string;
  unit: string;
  referral: string;
  decision: string;
  granted: boolean;
  /** First consultation (absent when care was not granted). */
  start?: string;
  /** End of the episode (absent while it is open). */
  end?: string;
  /** ICD-10 code of the main diagnosis (when care was granted). */
  diagnosis?: string;
  baseline?: QuestionnaireResponse;
  followUp?: QuestionnaireResponse;
}

export interface CohortPerson {
  index: number;
  /** Every national id the person has had; the pseudonym is made from the first (the best-ranked). */
  ids: NationalId[];
  /** The current national id (what an NPR extract holds now). */
  current: NationalId;
  patientId: string;
  pseudonym: string;
  gender: 'female' | 'male';
  /** Full birth date (the store keeps year and month only). */
  birthDate: string;
  /** Reserved: in the reservation register, nothing in the store. */
  reserved: boolean;
  reservedAt?: string;
  episodes: CohortEpisode[];
  /** The stored resources, Patient first; empty for a reserved person. */
  resources: Resource[];
}

/** Pain diagnoses (ICD-10, Volven 7110) seen at pain clinics. */
export const PAIN_DIAGNOSES = [
  'M54.5',
  'M54.2',
  'M79.7',
  'M79.1',
  'R52.1',
  'R52.2',
  'G44.2',
  'M25.5',
  'G62.9',
  'M53.1',
];
/** Treatments (SNOMED CT): cognitive behavioural therapy, physiotherapy. */
const TREATMENTS = ['228557008', '91251008'];
const ICD10 = 'urn:oid:2.16.578.1.12.4.1.1.7110';
const SNOMED = 'http://snomed.info/sct';
const REFERRAL_DATE = 'https://norpain.no/fhir/StructureDefinition/referral-date';
const RIGHT_TO_CARE = 'https://norpain.no/fhir/StructureDefinition/right-to-care';
const DECISION_SYSTEM = 'https://norpain.no/fhir/CodeSystem/right-to-care-decision';

/** Shares of the cohort (of persons, or of episodes where it says so). */
export const SHARES = {
  reserved: 0.005,
  dNumberOnly: 0.03,
  dNumberReplaced: 0.02,
  changedFnr: 0.01,
  twoEpisodes: 0.15,
  /** of episodes */
  granted: 0.9,
  baseline: 0.85,
  /** of episodes whose 12 months have passed */
  followUp: 0.7,
  procedure: 0.4,
};

const DAY = 86_400_000;
const day = (date: string): number => Date.parse(`${date}T00:00:00Z`) / DAY;
const dateOf = (days: number): string => new Date(Math.round(days) * DAY).toISOString().slice(0, 10);
const addDays = (date: string, n: number): string => dateOf(day(date) + n);
const addMonths = (date: string, n: number): string => {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 10);
};

/** A server-form id (lower-case UUID the national-id detector does not flag), from the seeded sequence. */
function serverId(random: () => number): string {
  for (;;) {
    const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
    hex[12] = '4';
    hex[16] = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
    const h = hex.join('');
    const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    if (!containsNationalId(id)) {
      return id;
    }
  }
}

/**
 * A synthetic national id (month + 80) of the kind for the birth date, not yet in `used` (it is added).
 * Individnummer 000–499 for 1900–1999, 500–999 for 2000–2039 (the century rule).
 */
export function syntheticIdFor(
  kind: 'fnr' | 'dnr',
  birthDate: string,
  random: () => number,
  used: Set<string>,
): NationalId {
  const [y, m, d] = birthDate.split('-').map(Number);
  const dd = String(d + (kind === 'dnr' ? 40 : 0)).padStart(2, '0');
  const mm = String(m + 80);
  const yy = String(y % 100).padStart(2, '0');
  const base = y < 2000 ? 0 : 500;
  for (;;) {
    const individual = String(base + Math.floor(random() * 500)).padStart(3, '0');
    const value = withCheckDigits(`${dd}${mm}${yy}${individual}`);
    if (value && !used.has(value)) {
      used.add(value);
      return { kind, value, synthetic: true };
    }
  }
}

/** A pseudonym key derived from the seed, for cohorts that are not loaded into a DATA_DIR. */
function seedPseudonymiser(seed: number): Pseudonymiser {
  const key = createHash('sha256').update(`norpain synthetic cohort ${seed}`).digest();
  return new Pseudonymiser({ current: 1, keys: new Map([[1, key]]) });
}

/**
 * The persons of a cohort, one at a time (a cohort of 100,000 does not fit in memory at once). The same
 * options give the same persons, ids and answers; national ids are unique within the cohort.
 */
export function* generateCohort(options: CohortOptions): Generator<CohortPerson> {
  const random = seededRandom(options.seed);
  const units = options.units ?? readUnits().map((u) => u.resh);
  const pseudonymiser = options.pseudonymiser ?? seedPseudonymiser(options.seed);
  const horizon = `${options.toYear}-12-31`;
  const used = new Set<string>();
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const between = (from: string, to: string): string => dateOf(day(from) + random() * (day(to) - day(from)));

  const nationalId = (kind: 'fnr' | 'dnr', birthDate: string) =>
    syntheticIdFor(kind, birthDate, random, used);

  for (let index = 0; index < options.persons; index++) {
    const gender = random() < 0.62 ? 'female' : 'male';
    const firstReferral = between(`${options.fromYear}-01-01`, horizon);
    // Aged 18–85 at the first referral.
    const age = 18 + random() * 67;
    const birthDate = dateOf(day(firstReferral) - age * 365.25 - 1);
    const kindRoll = random();
    let ids: NationalId[];
    let current: NationalId;
    if (kindRoll < SHARES.dNumberOnly) {
      current = nationalId('dnr', birthDate);
      ids = [current];
    } else if (kindRoll < SHARES.dNumberOnly + SHARES.dNumberReplaced) {
      const dnr = nationalId('dnr', birthDate);
      current = nationalId('fnr', birthDate);
      ids = [current, dnr];
    } else if (kindRoll < SHARES.dNumberOnly + SHARES.dNumberReplaced + SHARES.changedFnr) {
      // A new FNR (e.g. a corrected birth date); the person keeps the pseudonym of the first one.
      const old = nationalId('fnr', birthDate);
      current = nationalId('fnr', birthDate);
      ids = [old, current];
    } else {
      current = nationalId('fnr', birthDate);
      ids = [current];
    }
    const patientId = serverId(random);
    const pseudonym = pseudonymiser.pseudonym(canonicalNationalId(ids[0]));
    const person: CohortPerson = {
      index,
      ids,
      current,
      patientId,
      pseudonym,
      gender,
      birthDate,
      reserved: random() < (options.reservedShare ?? SHARES.reserved),
      episodes: [],
      resources: [],
    };
    if (person.reserved) {
      person.reservedAt = `${between(firstReferral, horizon)}T12:00:00+01:00`;
      yield person;
      continue;
    }
    const severity0 = 0.35 + random() * 0.5;
    const firstUnit = pick(units);
    const episodeCount = random() < SHARES.twoEpisodes ? 2 : 1;
    let referral = firstReferral;
    for (let e = 0; e < episodeCount && referral <= horizon; e++) {
      const unit = e === 0 ? firstUnit : random() < 0.5 ? firstUnit : pick(units);
      const episode = makeEpisode(person, unit, referral, severity0);
      person.episodes.push(episode);
      // A later episode starts after this one ends.
      referral = addDays(episode.end ?? horizon, 30 + random() * 300);
      if (!episode.end) {
        break;
      }
    }
    person.resources = resourcesOf(person);
    yield person;
  }

  function makeEpisode(
    person: CohortPerson,
    unit: string,
    referral: string,
    severity0: number,
  ): CohortEpisode {
    const decision = dateOf(Math.min(day(referral) + 5 + random() * 40, day(horizon)));
    const episode: CohortEpisode = {
      id: serverId(random),
      unit,
      referral,
      decision,
      granted: random() < SHARES.granted,
    };
    if (!episode.granted) {
      return episode;
    }
    const start = day(decision) + 10 + random() * 200;
    if (start > day(horizon)) {
      return episode;
    }
    episode.start = dateOf(start);
    episode.diagnosis = pick(PAIN_DIAGNOSES);
    const end = start + 60 + random() * 300;
    if (end <= day(horizon) && random() > 0.1) {
      episode.end = dateOf(end);
    }
    if (random() < SHARES.baseline) {
      const authored = between(decision, episode.start);
      episode.baseline = answer(NORPAIN_QUESTIONNAIRE_URLS.baseline, person, authored, severity0, 0);
    }
    if (episode.end) {
      const due = addMonths(episode.end, 12);
      const answeredOn = addDays(due, random() * 30);
      if (answeredOn <= horizon && random() < SHARES.followUp) {
        const severity12 = Math.max(0, severity0 - (random() * 0.5 - 0.1));
        episode.followUp = answer(
          NORPAIN_QUESTIONNAIRE_URLS.followUp12m,
          person,
          answeredOn,
          severity12,
          severity0 - severity12,
        );
      }
    }
    return episode;
  }

  function answer(
    url: string,
    person: CohortPerson,
    authored: string,
    severity: number,
    improvement: number,
  ): QuestionnaireResponse {
    const scored = answerQuestionnaire(url, { severity, improvement, random });
    return {
      ...scored,
      id: serverId(random),
      subject: { reference: `Patient/${person.patientId}` },
      authored: `${authored}T12:00:00+01:00`,
    };
  }

  function resourcesOf(person: CohortPerson): Resource[] {
    const units = new Set(person.episodes.map((e) => e.unit));
    const patientRef = { reference: `Patient/${person.patientId}` };
    const patient: Patient = {
      resourceType: 'Patient',
      id: person.patientId,
      meta: labels(units),
      identifier: [{ use: 'official', system: registryPseudonymSystem, value: person.pseudonym }],
      gender: person.gender,
      birthDate: person.birthDate.slice(0, 7),
    };
    const out: Resource[] = [patient];
    for (const episode of person.episodes) {
      const meta = labels([episode.unit]);
      const unitRef = { identifier: { system: RESH_SYSTEM, value: episode.unit } };
      const rightToCare = [
        {
          url: 'decision',
          valueCoding: { system: DECISION_SYSTEM, code: episode.granted ? 'granted' : 'not-granted' },
        },
        { url: 'date', valueDate: episode.decision },
        ...(episode.granted ? [{ url: 'deadline', valueDate: addMonths(episode.referral, 6) }] : []),
      ];
      const eoc: EpisodeOfCare = {
        resourceType: 'EpisodeOfCare',
        id: episode.id,
        meta,
        extension: [
          { url: REFERRAL_DATE, valueDate: episode.referral },
          { url: RIGHT_TO_CARE, extension: rightToCare },
        ],
        status: !episode.granted
          ? 'cancelled'
          : episode.end
            ? 'finished'
            : episode.start
              ? 'active'
              : 'waitlist',
        patient: patientRef,
        managingOrganization: unitRef,
        ...(episode.start
          ? { period: { start: episode.start, ...(episode.end ? { end: episode.end } : {}) } }
          : {}),
      };
      out.push(eoc);
      if (episode.start && episode.diagnosis) {
        const encounterId = serverId(random);
        const encounter: Encounter = {
          resourceType: 'Encounter',
          id: encounterId,
          meta,
          status: 'finished',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
          subject: patientRef,
          episodeOfCare: [{ reference: `EpisodeOfCare/${episode.id}` }],
          period: { start: `${episode.start}T09:00:00+01:00`, end: `${episode.start}T10:30:00+01:00` },
          serviceProvider: unitRef,
        };
        const condition: Condition = {
          resourceType: 'Condition',
          id: serverId(random),
          meta,
          clinicalStatus: {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }],
          },
          verificationStatus: {
            coding: [
              { system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' },
            ],
          },
          category: [
            {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/condition-category',
                  code: 'encounter-diagnosis',
                },
              ],
            },
          ],
          code: { coding: [{ system: ICD10, code: episode.diagnosis }] },
          subject: patientRef,
          encounter: { reference: `Encounter/${encounterId}` },
          recordedDate: episode.start,
        };
        out.push(encounter, condition);
        if (random() < SHARES.procedure) {
          const procedure: Procedure = {
            resourceType: 'Procedure',
            id: serverId(random),
            meta,
            status: 'completed',
            code: { coding: [{ system: SNOMED, code: pick(TREATMENTS) }] },
            subject: patientRef,
            encounter: { reference: `Encounter/${encounterId}` },
            performedDateTime: episode.start,
          };
          out.push(procedure);
        }
      }
      for (const response of [episode.baseline, episode.followUp]) {
        if (response) {
          out.push({ ...response, meta });
        }
      }
    }
    return out;
  }
}

function labels(units: Iterable<string>): { security: { system: string; code: string }[] } {
  return { security: [...new Set(units)].sort().map((code) => ({ system: UNIT_LABEL_SYSTEM, code })) };
}

/** `npx tsx test/generators/cohort.ts --persons N --data-dir DIR [--seed N] [--from YYYY] [--to YYYY]` */
async function main(): Promise<void> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: {
      persons: { type: 'string', default: '1000' },
      'data-dir': { type: 'string' },
      seed: { type: 'string', default: '1' },
      from: { type: 'string', default: '2021' },
      to: { type: 'string', default: '2024' },
    },
  });
  const dataDir = values['data-dir'];
  if (!dataDir) {
    throw new Error('--data-dir DIR is required');
  }
  const persons = Number(values.persons);
  const { loadCohort } = await import('./load');
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { format: 'cohort {bar} {value}/{total} persons, {eta}s left' },
    Presets.shades_classic,
  );
  bar.start(persons, 0);
  const summary = await loadCohort(
    dataDir,
    { persons, seed: Number(values.seed), fromYear: Number(values.from), toYear: Number(values.to) },
    (done) => bar.update(done),
  );
  bar.stop();
  const total = Object.values(summary.resources).reduce((a, b) => a + b, 0);
  process.stdout.write(
    [
      `wrote ${summary.persons} persons into ${dataDir} in ${summary.seconds.toFixed(1)} s:`,
      `  ${summary.persons - summary.reserved} in the identity vault (${summary.nationalIds} national ids in all),` +
        ` ${summary.reserved} reserved (in the reservation register, no data)`,
      `  ${total} resources: ${Object.entries(summary.resources)
        .map(([type, n]) => `${n} ${type}`)
        .join(', ')}`,
      '',
    ].join('\n'),
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`cohort: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
