import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Questionnaire, Task } from '@medplum/fhirtypes';
import { call, ok, people } from '../consent/fixtures';
import { episode, submitAbout, type EpisodeOptions } from '../helpers/clinical';
import { startTestServer, type TestServer } from '../helpers/testServer';
import type { InvitationMessage } from '../../src/followup/message';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';

export { call, episode, ok, people };

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
  options: EpisodeOptions = {},
): Promise<Registered> {
  const [patientId, episodeId] = await submitAbout(server, token, fnr, (p) => [episode(p, options)]);
  return { fnr, patientId, episodeId };
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

/** The Questionnaire a baseline Task asks the person to answer. */
export function baselineQuestionnaire(): Questionnaire {
  return readNorPainQuestionnaires().find((q) => q.url?.endsWith('/norpain-baseline')) as Questionnaire;
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
