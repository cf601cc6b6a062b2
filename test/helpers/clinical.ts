import type { Bundle, EpisodeOfCare, Patient, Resource } from '@medplum/fhirtypes';
import { call, FNR_SYSTEM, ok, RESH } from '../consent/fixtures';
import type { TestServer } from './testServer';

/**
 * What a clinic sends, shared by the HTTP suites: an EpisodeOfCare as the NorPain profile wants it, and
 * the transaction that registers a person (by national id) with resources about them.
 */

export interface EpisodeOptions {
  /** RESH id of the unit; 999001 unless told. */
  unit?: string;
  /** First consultation; 2024-03-04 unless told. */
  start?: string;
  /** The end: the episode is then finished, else active. */
  end?: string;
  /** The right-to-care decision; granted unless told. */
  granted?: boolean;
  /** Referral date, decision date and treatment deadline; 2024-01-15, 2024-02-01 and 2024-07-15 unless told. */
  referral?: string;
  decided?: string;
  deadline?: string;
}

export function episode(patient: string, options: EpisodeOptions = {}): EpisodeOfCare {
  return {
    resourceType: 'EpisodeOfCare',
    extension: [
      {
        url: 'https://norpain.no/fhir/StructureDefinition/referral-date',
        valueDate: options.referral ?? '2024-01-15',
      },
      {
        url: 'https://norpain.no/fhir/StructureDefinition/right-to-care',
        extension: [
          {
            url: 'decision',
            valueCoding: {
              system: 'https://norpain.no/fhir/CodeSystem/right-to-care-decision',
              code: options.granted === false ? 'not-granted' : 'granted',
            },
          },
          { url: 'date', valueDate: options.decided ?? '2024-02-01' },
          { url: 'deadline', valueDate: options.deadline ?? '2024-07-15' },
        ],
      },
    ],
    status: options.end ? 'finished' : 'active',
    patient: { reference: patient },
    managingOrganization: { identifier: { system: RESH, value: options.unit ?? '999001' } },
    period: { start: options.start ?? '2024-03-04', ...(options.end ? { end: options.end } : {}) },
  };
}

const PATIENT = 'urn:uuid:7f0b6c1e-0000-4000-8000-000000000000';

/**
 * A clinic's transaction about one person: their Patient (by national id, born 15 January 1980, with
 * `patient`'s elements besides) and the resources `about` makes for that Patient's reference, in order.
 * Returns the ids the server gave them, the Patient's first; fails unless the transaction succeeds.
 */
export async function submitAbout(
  server: TestServer,
  token: string,
  fnr: string,
  about: (patient: string) => Resource[],
  patient: Partial<Patient> = {},
): Promise<string[]> {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: PATIENT,
        resource: {
          resourceType: 'Patient',
          identifier: [{ system: FNR_SYSTEM, value: fnr }],
          birthDate: '1980-01-15',
          ...patient,
        },
        request: { method: 'POST', url: 'Patient' },
      },
      ...about(PATIENT).map((resource) => ({
        resource,
        request: { method: 'POST' as const, url: resource.resourceType },
      })),
    ],
  };
  const reply = ok(await call<Bundle>(server, token, 'POST', '', bundle), 200);
  return (reply.entry ?? []).map((e) => (e.response?.location ?? '').split('/')[1]);
}
