import type {
  Bundle,
  Extension,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  Resource,
} from '@medplum/fhirtypes';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { call, FNR_SYSTEM, RESH } from '../consent/fixtures';
import type { TestServer } from '../helpers/testServer';

/**
 * Registry data for the statistics and report tests, sent the way clinics send it (a transaction per
 * person with a clinic token, then the person's forms), so that what the tests count went through the
 * real pipeline. Every person is synthetic (Test-Norge national ids, month + 80).
 */

export const BASELINE = 'https://norpain.no/fhir/Questionnaire/norpain-baseline';
export const FOLLOW_UP = 'https://norpain.no/fhir/Questionnaire/norpain-followup-12m';

export interface Answers {
  /** Worst, least, average, now (0-10). */
  nrs: [number, number, number, number];
  /** BPI interference items 1-7 (0-10). */
  bpi?: number[];
  /** HSCL-25 items (1-4). */
  hscl?: number[];
  /** ISI items (0-4). */
  isi?: number[];
  /** Chalder fatigue items (0-3). */
  cfq?: number[];
  /** EQ VAS (0-100). */
  eqVas?: number;
  /** PGIC global, 1 (very much better) to 7 (very much worse); follow-up only. */
  pgic?: number;
}

export interface PersonSpec {
  unit: string;
  gender: 'female' | 'male' | 'other';
  /** YYYY-MM-DD */
  birthDate: string;
  referral: string;
  decision?: { granted: boolean; date: string; deadline?: string };
  start?: string;
  end?: string;
  baseline?: Answers;
  followUp?: Answers & { authored: string };
}

const random = seededRandom(20261207);

function episode(patient: string, p: PersonSpec): Resource {
  const extension: Extension[] = [
    { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: p.referral },
  ];
  if (p.decision) {
    extension.push({
      url: 'https://norpain.no/fhir/StructureDefinition/right-to-care',
      extension: [
        {
          url: 'decision',
          valueCoding: {
            system: 'https://norpain.no/fhir/CodeSystem/right-to-care-decision',
            code: p.decision.granted ? 'granted' : 'not-granted',
          },
        },
        { url: 'date', valueDate: p.decision.date },
        ...(p.decision.deadline ? [{ url: 'deadline', valueDate: p.decision.deadline }] : []),
      ],
    });
  }
  return {
    resourceType: 'EpisodeOfCare',
    extension,
    status: p.end ? 'finished' : p.start ? 'active' : 'planned',
    patient: { reference: patient },
    managingOrganization: { identifier: { system: RESH, value: p.unit } },
    ...(p.start ? { period: { start: p.start, ...(p.end ? { end: p.end } : {}) } } : {}),
  } as Resource;
}

/** The code system of an item's answer options, as the registry's Questionnaire has it. */
const systems = new Map<string, string>();
for (const q of readNorPainQuestionnaires()) {
  const walk = (items: readonly QuestionnaireItem[]): void =>
    items.forEach((item) => {
      const system = item.answerOption?.[0]?.valueCoding?.system;
      if (system !== undefined) systems.set(item.linkId, system);
      walk(item.item ?? []);
    });
  walk(q.item ?? []);
}
const option = (linkId: string, code: string) => ({ valueCoding: { system: systems.get(linkId), code } });
const integers = (prefix: string, values: number[] | undefined): QuestionnaireResponseItem[] =>
  (values ?? []).map((v, i) => ({ linkId: `${prefix}-${i + 1}`, answer: [{ valueInteger: v }] }));
const codes = (prefix: string, values: number[] | undefined): QuestionnaireResponseItem[] =>
  (values ?? []).map((v, i) => ({
    linkId: `${prefix}-${i + 1}`,
    answer: [option(`${prefix}-${i + 1}`, String(v))],
  }));

function painItems(a: Answers): QuestionnaireResponseItem[] {
  const [verst, minst, snitt, naa] = a.nrs;
  return [
    { linkId: 'smertesteder', answer: [option('smertesteder', 'nakke')] },
    { linkId: 'nrs-verst', answer: [{ valueInteger: verst }] },
    { linkId: 'nrs-minst', answer: [{ valueInteger: minst }] },
    { linkId: 'nrs-gjennomsnitt', answer: [{ valueInteger: snitt }] },
    { linkId: 'nrs-naa', answer: [{ valueInteger: naa }] },
  ];
}

function commonGroups(a: Answers): QuestionnaireResponseItem[] {
  const groups: QuestionnaireResponseItem[] = [{ linkId: 'smerte', item: painItems(a) }];
  if (a.bpi) groups.push({ linkId: 'bpi', item: integers('bpi', a.bpi) });
  if (a.hscl) groups.push({ linkId: 'hscl', item: codes('hscl', a.hscl) });
  if (a.isi) groups.push({ linkId: 'isi', item: codes('isi', a.isi) });
  if (a.cfq) groups.push({ linkId: 'cfq', item: codes('cfq', a.cfq) });
  if (a.eqVas !== undefined)
    groups.push({ linkId: 'eq5d', item: [{ linkId: 'eq5d-vas', answer: [{ valueInteger: a.eqVas }] }] });
  return groups;
}

function baseline(patient: string, a: Answers, authored: string): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${BASELINE}|1.0.0`,
    status: 'completed',
    subject: { reference: patient },
    authored: `${authored}T10:00:00+01:00`,
    item: [
      { linkId: 'bakgrunn', item: [{ linkId: 'utdanning', answer: [option('utdanning', 'grunnskole')] }] },
      {
        linkId: 'arbeid',
        item: [{ linkId: 'arbeidssituasjon', answer: [option('arbeidssituasjon', 'heltid')] }],
      },
      {
        linkId: 'smertevarighet',
        item: [{ linkId: 'smertedebut', answer: [option('smertedebut', '1-2a')] }],
      },
      ...commonGroups(a),
    ],
  };
}

function followUp(patient: string, a: Answers & { authored: string }): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${FOLLOW_UP}|1.0.0`,
    status: 'completed',
    subject: { reference: patient },
    authored: `${a.authored}T10:00:00+01:00`,
    item: [
      {
        linkId: 'pgic',
        item: [{ linkId: 'pgic-global', answer: [option('pgic-global', String(a.pgic ?? 4))] }],
      },
      {
        linkId: 'arbeid',
        item: [{ linkId: 'arbeidssituasjon', answer: [option('arbeidssituasjon', 'heltid')] }],
      },
      ...commonGroups(a),
    ],
  };
}

/** Sends each person as their clinic would; returns the Patient ids in the order given. */
export async function submitPeople(server: TestServer, people: readonly PersonSpec[]): Promise<string[]> {
  const tokens = new Map<string, string>();
  const ids: string[] = [];
  for (const p of people) {
    let token = tokens.get(p.unit);
    if (token === undefined) {
      token = await server.token('clinic', { org: p.unit });
      tokens.set(p.unit, token);
    }
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:5a1e0000-0000-4000-8000-000000000001',
          resource: {
            resourceType: 'Patient',
            identifier: [{ system: FNR_SYSTEM, value: syntheticNationalId('fnr', { random }) }],
            gender: p.gender,
            birthDate: p.birthDate,
          },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:5a1e0000-0000-4000-8000-000000000002',
          resource: episode('urn:uuid:5a1e0000-0000-4000-8000-000000000001', p),
          request: { method: 'POST', url: 'EpisodeOfCare' },
        },
      ],
    };
    const reply = await call<Bundle>(server, token, 'POST', '', bundle);
    if (reply.status !== 200) throw new Error(`submission failed: ${reply.status} ${reply.text}`);
    const patient = (reply.body.entry?.[0].response?.location ?? '').split('/').slice(0, 2).join('/');
    ids.push(patient.split('/')[1]);
    const forms = [
      ...(p.baseline ? [baseline(patient, p.baseline, p.start ?? p.referral)] : []),
      ...(p.followUp ? [followUp(patient, p.followUp)] : []),
    ];
    for (const form of forms) {
      const sent = await call(server, token, 'POST', 'QuestionnaireResponse', form);
      if (sent.status !== 201) throw new Error(`form refused: ${sent.status} ${sent.text}`);
    }
  }
  return ids;
}
