import type { Bundle, Resource } from '@medplum/fhirtypes';
import { call, FNR_SYSTEM, people, RESH } from '../consent/fixtures';
import { episode, submitAbout } from '../helpers/clinical';
import type { TestServer } from '../helpers/testServer';

export { call, episode, FNR_SYSTEM, people, RESH };

export const UNIT_A = '999001';
export const UNIT_B = '999002';
export const QUESTIONNAIRE_URL = 'https://norpain.no/fhir/Questionnaire/auth-test';

export const questionnaire = {
  resourceType: 'Questionnaire',
  url: QUESTIONNAIRE_URL,
  version: '1',
  name: 'AuthTest',
  status: 'active',
  item: [{ linkId: 'q1', text: 'How are you?', type: 'string' }],
};

export function response(subject: {
  reference?: string;
  identifier?: { system: string; value: string };
}): Resource {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${QUESTIONNAIRE_URL}|1`,
    status: 'completed',
    subject,
    authored: '2024-03-05T10:00:00+01:00',
    item: [{ linkId: 'q1', answer: [{ valueString: 'fine' }] }],
  } as Resource;
}

/** A diagnosis (ICD-10 M79.7, fibromyalgia) about `subject`, recorded on `recorded`. */
export function condition(subject: { reference: string }, recorded = '2024-03-05'): Resource {
  return {
    resourceType: 'Condition',
    code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] },
    subject,
    recordedDate: recorded,
  } as Resource;
}

export interface PersonData {
  fnr: string;
  patient: string;
  episode: string;
  condition: string;
}

/** A clinic's transaction for one person: Patient (national id, a fødselsnummer unless `system` says
 * otherwise), an episode at `unit`, a Condition. */
export async function submitPerson(
  server: TestServer,
  token: string,
  fnr: string,
  unit: string,
  system = FNR_SYSTEM,
): Promise<PersonData> {
  const [patient, episodeId, conditionId] = await submitAbout(
    server,
    token,
    fnr,
    (p) => [episode(p, { unit }), condition({ reference: p })],
    { identifier: [{ system, value: fnr }] },
  );
  return { fnr, patient, episode: episodeId, condition: conditionId };
}

/** The ids of the resources of one type in a searchset (matches and includes). */
export function idsIn(bundle: Bundle, type?: string): string[] {
  return (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Resource => r !== undefined && (type === undefined || r.resourceType === type))
    .map((r) => `${r.resourceType}/${r.id}`);
}
