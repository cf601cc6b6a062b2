import type { Patient } from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { clientFor, type Client } from '../http/client';
import { startTestServer, SYNTHETIC_FNR, type TestServer } from '../helpers/testServer';

export interface ServerWithPatient {
  server: TestServer;
  client: Client;
  /** `Patient/<id>` of a synthetic patient, for QuestionnaireResponse.subject. */
  patientRef: string;
}

/** A test server, a registry-admin client, and one synthetic patient that responses can be about. */
export async function startWithPatient(): Promise<ServerWithPatient> {
  const server = await startTestServer();
  const client = await clientFor(server);
  const patient = await client.post<Patient>(
    'Patient',
    { resourceType: 'Patient', identifier: [{ system: preferredSystem.fnr, value: SYNTHETIC_FNR }] },
    { prefer: 'return=representation' },
  );
  expect(patient.status).toBe(201);
  return { server, client, patientRef: `Patient/${patient.body.id}` };
}
