import { randomUUID } from 'node:crypto';
import type {
  Bundle,
  EpisodeOfCare,
  Extension,
  Questionnaire,
  ResearchStudy,
  Resource,
} from '@medplum/fhirtypes';
import type { Principal } from '../../src/auth/principal';
import { episode } from '../auth/fixtures';
import { call, FNR_SYSTEM, ok, RESH } from '../consent/fixtures';
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
  const patient = `urn:uuid:${randomUUID()}`;
  const q = questionnaire();
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: patient,
        resource: {
          resourceType: 'Patient',
          identifier: [{ system: FNR_SYSTEM, value: fnr }],
          birthDate: '1980-01-15',
          gender: 'female',
        },
        request: { method: 'POST', url: 'Patient' },
      },
      { resource: episodeFrom(patient, unit, start), request: { method: 'POST', url: 'EpisodeOfCare' } },
      {
        resource: {
          resourceType: 'Condition',
          code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] },
          subject: { reference: patient },
          recordedDate: start,
        },
        request: { method: 'POST', url: 'Condition' },
      },
      {
        resource: {
          resourceType: 'QuestionnaireResponse',
          questionnaire: `${q.url}|1`,
          status: 'completed',
          subject: { reference: patient },
          authored: `${start}T10:15:00+01:00`,
          item: [
            { linkId: 'smerte', answer: [{ valueInteger: 7 }] },
            { linkId: 'hjemme', answer: [{ valueBoolean: true }] },
            { linkId: 'kommentar', answer: [{ valueString: 'vondt i ryggen' }] },
          ],
        } as Resource,
        request: { method: 'POST', url: 'QuestionnaireResponse' },
      },
    ],
  };
  const reply = ok(await call<Bundle>(server, clinic, 'POST', '', bundle), 200);
  const ids = (reply.entry ?? []).map((e) => (e.response?.location ?? '').split('/')[1]);
  return { patient: ids[0], episode: ids[1], condition: ids[2], response: ids[3] };
}

/** An episode at `unit` starting `start`, referred and granted the right to care that same day. */
function episodeFrom(patient: string, unit: string, start: string): EpisodeOfCare {
  const resource = episode(patient, unit, start) as EpisodeOfCare;
  const sameDay = (extension: Extension): Extension =>
    extension.valueDate !== undefined
      ? { ...extension, valueDate: start }
      : { ...extension, ...(extension.extension ? { extension: extension.extension.map(sameDay) } : {}) };
  return { ...resource, extension: (resource.extension ?? []).map(sameDay) };
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
