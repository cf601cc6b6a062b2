import { randomUUID } from 'node:crypto';
import type { Questionnaire, ResearchStudy, Resource } from '@medplum/fhirtypes';
import type { Principal } from '../../src/auth/principal';
import { call, ok, RESH } from '../consent/fixtures';
import { episode, submitAbout } from '../helpers/clinical';
import type { TestServer } from '../helpers/testServer';

export { call, ok };

export const UNIT_A = '999001';
export const UNIT_B = '999002';
const EXT = 'https://norpain.no/fhir/StructureDefinition/';

/** A run-unique suffix: on a shared HAPI server, studies and Questionnaires of earlier runs stay around. */
export const RUN = randomUUID().slice(0, 8);

/** A Questionnaire of this run: a pain score (integer), a coded answer, and a free-text comment. */
export function questionnaire(): Questionnaire {
  return {
    resourceType: 'Questionnaire',
    id: `research-${RUN}`,
    url: `https://norpain.no/fhir/Questionnaire/research-test-${RUN}`,
    version: '1',
    name: 'ResearchTest',
    status: 'active',
    item: [
      { linkId: 'smerte', text: 'Smerte nå (0-10)', type: 'integer' },
      { linkId: 'hjemme', text: 'Bor alene?', type: 'boolean' },
      { linkId: 'kommentar', text: 'Kommentar', type: 'string' },
    ],
  };
}

export interface ApprovalOptions {
  id?: string;
  variables: string[];
  precision?: 'year' | 'month' | 'day';
  ageBand?: number;
  units?: string[];
  status?: string;
  period?: { start: string; end: string };
}

export function approval(options: ApprovalOptions): ResearchStudy {
  return {
    resourceType: 'ResearchStudy',
    id: options.id ?? `study-${RUN}`,
    meta: { profile: ['https://norpain.no/fhir/StructureDefinition/norpain-researchstudy-approval'] },
    extension: [
      ...options.variables.map((v) => ({ url: `${EXT}approved-variable`, valueString: v })),
      { url: `${EXT}date-precision`, valueCode: options.precision ?? 'month' },
      ...(options.ageBand === undefined
        ? []
        : [{ url: `${EXT}age-band`, valuePositiveInt: options.ageBand }]),
      ...(options.units ?? [UNIT_A]).map((unit) => ({
        url: `${EXT}covered-unit`,
        valueIdentifier: { system: RESH, value: unit },
      })),
    ],
    identifier: [{ system: 'https://norpain.no/fhir/NamingSystem/research-approval', value: `2026-${RUN}` }],
    title: 'Smerte før og etter behandling',
    status: (options.status ?? 'active') as ResearchStudy['status'],
    period: options.period ?? { start: '2024-01-01', end: '2030-12-31' },
  };
}

/** Registry staff write the approval (PUT with its id); returns the reply. */
export function putApproval(server: TestServer, staff: string, study: ResearchStudy) {
  return call<Resource>(server, staff, 'PUT', `ResearchStudy/${study.id}`, study);
}

export interface Person {
  patient: string;
  episode: string;
  condition: string;
  response: string;
}

/**
 * One person as a clinic at `unit` sends them: Patient (born 15 Jan 1980), an episode starting `start`, a
 * Condition, and an answer to this run's Questionnaire authored on `start` with a free-text comment.
 */
export async function submitPerson(
  server: TestServer,
  clinic: string,
  fnr: string,
  unit: string,
  start = '2024-03-04',
): Promise<Person> {
  const q = questionnaire();
  const [patient, episodeId, condition, response] = await submitAbout(
    server,
    clinic,
    fnr,
    (p) => [
      // Referred and granted the right to care the day it starts.
      episode(p, { unit, start, referral: start, decided: start, deadline: start }),
      {
        resourceType: 'Condition',
        code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] },
        subject: { reference: p },
        recordedDate: start,
      },
      {
        resourceType: 'QuestionnaireResponse',
        questionnaire: `${q.url}|1`,
        status: 'completed',
        subject: { reference: p },
        authored: `${start}T10:15:00+01:00`,
        item: [
          { linkId: 'smerte', answer: [{ valueInteger: 7 }] },
          { linkId: 'hjemme', answer: [{ valueBoolean: true }] },
          { linkId: 'kommentar', answer: [{ valueString: 'vondt i ryggen' }] },
        ],
      },
    ],
    { gender: 'female' },
  );
  return { patient, episode: episodeId, condition, response };
}

/** A researcher principal bound to `study`, as the authenticator makes it from a token. */
export function researcher(study: string): Principal {
  return { role: 'researcher', clientId: 'research-test', study, scopes: ['user/*.rs'] };
}

/** The project id a study gives a registry id. */
export function projectId(server: TestServer, study: string, type: string, registryId: string): string {
  return server.server.studyViews.pseudonyms.forStudy(study).id(type, registryId);
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
