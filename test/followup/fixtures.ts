import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, EpisodeOfCare, Task } from '@medplum/fhirtypes';
import { call, ok, people, FNR_SYSTEM, RESH } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import type { InvitationMessage } from '../../src/followup/message';

export { call, ok, people };

/** An EpisodeOfCare as the NorPain profile wants it, with right to care granted unless told otherwise. */
export function episode(
  patient: string,
  options: { start?: string; end?: string; granted?: boolean; unit?: string } = {},
): EpisodeOfCare {
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
              code: options.granted === false ? 'not-granted' : 'granted',
            },
          },
          { url: 'date', valueDate: '2024-02-01' },
        ],
      },
    ],
    status: options.end ? 'finished' : 'active',
    patient: { reference: patient },
    managingOrganization: { identifier: { system: RESH, value: options.unit ?? '999001' } },
    period: { start: options.start ?? '2024-03-04', ...(options.end ? { end: options.end } : {}) },
  };
}

export interface Registered {
  fnr: string;
  patientId: string;
  episodeId: string;
}

/** A clinic registers the person (by national id) and an episode in one transaction. */
export async function register(
  server: TestServer,
  token: string,
  fnr: string,
  options: Parameters<typeof episode>[1] = {},
): Promise<Registered> {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:5d2a7c40-0000-4000-8000-000000000001',
        resource: {
          resourceType: 'Patient',
          identifier: [{ system: FNR_SYSTEM, value: fnr }],
          birthDate: '1980-01-15',
        },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        fullUrl: 'urn:uuid:5d2a7c40-0000-4000-8000-000000000002',
        resource: episode('urn:uuid:5d2a7c40-0000-4000-8000-000000000001', options),
        request: { method: 'POST', url: 'EpisodeOfCare' },
      },
    ],
  };
  const reply = ok(await call<Bundle>(server, token, 'POST', '', bundle), 200);
  const ids = (reply.entry ?? []).map((e) => (e.response?.location ?? '').split('/')[1]);
  return { fnr, patientId: ids[0], episodeId: ids[1] };
}

/** The follow-up Tasks of an episode, as registry staff read them. */
export async function tasksOf(server: TestServer, staff: string, episodeId: string): Promise<Task[]> {
  const reply = ok(
    await call<Bundle<Task>>(
      server,
      staff,
      'GET',
      `Task?identifier=${encodeURIComponent(`https://norpain.no/fhir/NamingSystem/follow-up-task|${episodeId}/baseline`)},${encodeURIComponent(`https://norpain.no/fhir/NamingSystem/follow-up-task|${episodeId}/12-months`)}&_count=10`,
    ),
    200,
  );
  return (reply.entry ?? []).map((e) => e.resource as Task);
}

export function timePointOf(task: Task): string | undefined {
  return task.code?.coding?.[0]?.code;
}

/** The outbox's messages, by file name. */
export function outbox(server: TestServer): Map<string, InvitationMessage> {
  const dir = path.join(server.dataDir, 'outbox');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  return new Map(
    files.map((f) => [f, JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as InvitationMessage]),
  );
}

export const DAY = 86_400_000;

/** A test server (with these FOLLOWUP_* settings) and a clinic's and registry staff's tokens. */
export async function startFollowUpServer(
  env: Record<string, string> = {},
): Promise<{ server: TestServer; clinic: string; staff: string }> {
  const server = await startTestServer(env);
  return { server, clinic: await server.token('clinic'), staff: await server.token('registry-admin') };
}

/** The episode's Task of one time point, as registry staff read it. */
export async function taskAt(
  server: TestServer,
  staff: string,
  episodeId: string,
  timePoint: string,
): Promise<Task> {
  return (await tasksOf(server, staff, episodeId)).find((t) => timePointOf(t) === timePoint) as Task;
}
