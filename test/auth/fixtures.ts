import type { Bundle, Resource } from '@medplum/fhirtypes';
import { call, FNR_SYSTEM, people, RESH } from '../consent/fixtures';
import type { TestServer } from '../helpers/testServer';

export { call, FNR_SYSTEM, people, RESH };

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

/** An EpisodeOfCare as the NorPain profile wants it: referral date and right-to-care decision. */
export function episode(patient: string, unit: string, start = '2024-03-04'): Resource {
  return {
    resourceType: 'EpisodeOfCare',
    extension: [
      { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2024-01-15' },
      {
        url: 'https://norpain.no/fhir/StructureDefinition/right-to-care',
        extension: [
          {
            url: 'decision',
            valueCoding: {
              system: 'https://norpain.no/fhir/CodeSystem/right-to-care-decision',
              code: 'granted',
            },
          },
          { url: 'date', valueDate: '2024-02-01' },
          { url: 'deadline', valueDate: '2024-07-15' },
        ],
      },
    ],
    status: 'active',
    patient: { reference: patient },
    managingOrganization: { identifier: { system: RESH, value: unit } },
    period: { start },
  } as Resource;
}

export interface PersonData {
  fnr: string;
  patient: string;
  episode: string;
  condition: string;
}

/** A clinic's transaction for one person: Patient (national id), an episode at `unit`, a Condition. */
export async function submitPerson(
  server: TestServer,
  token: string,
  fnr: string,
  unit: string,
): Promise<PersonData> {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:7f0b6c1e-0000-4000-8000-000000000001',
        resource: {
          resourceType: 'Patient',
          identifier: [{ system: FNR_SYSTEM, value: fnr }],
          birthDate: '1980-01-15',
        },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        fullUrl: 'urn:uuid:7f0b6c1e-0000-4000-8000-000000000002',
        resource: episode('urn:uuid:7f0b6c1e-0000-4000-8000-000000000001', unit),
        request: { method: 'POST', url: 'EpisodeOfCare' },
      },
      {
        fullUrl: 'urn:uuid:7f0b6c1e-0000-4000-8000-000000000003',
        resource: condition({ reference: 'urn:uuid:7f0b6c1e-0000-4000-8000-000000000001' }),
        request: { method: 'POST', url: 'Condition' },
      },
    ],
  };
  const reply = await call<Bundle>(server, token, 'POST', '', bundle);
  if (reply.status !== 200) {
    throw new Error(`submission failed: ${reply.status} ${reply.text}`);
  }
  const ids = (reply.body.entry ?? []).map((e) => (e.response?.location ?? '').split('/')[1]);
  return { fnr, patient: ids[0], episode: ids[1], condition: ids[2] };
}

/** The ids of the resources of one type in a searchset (matches and includes). */
export function idsIn(bundle: Bundle, type?: string): string[] {
  return (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Resource => r !== undefined && (type === undefined || r.resourceType === type))
    .map((r) => `${r.resourceType}/${r.id}`);
}
