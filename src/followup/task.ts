import { createHash } from 'node:crypto';
import type { CodeableConcept, Task } from '@medplum/fhirtypes';
import { parseReference } from '../fhir/reference';
import { containsNationalId } from '../identity/nationalId';
import { NORPAIN_QUESTIONNAIRE_URLS, parseCanonical } from '../validation/questionnaire';

/**
 * The follow-up Task (helsenorge's skjemaoppgave; docs/followup.md): one per episode and time point, written
 * only by the server. Its id is derived from the episode and the time point, so that scheduling the same
 * episode again (re-sent data, a retry, recovery after a crash) writes the same Task instead of a second
 * one; its identifier says the same in a form a search can use.
 */
export type TimePoint = 'baseline' | '12-months';

export const FOLLOW_UP_QUESTIONNAIRES: Record<TimePoint, string> = {
  baseline: NORPAIN_QUESTIONNAIRE_URLS.baseline,
  '12-months': NORPAIN_QUESTIONNAIRE_URLS.followUp12m,
};

/** Whether a Questionnaire (canonical, any version) is one a follow-up Task asks for: Tasks are written
 * only by the server, each for one of these, so an answer to any other completes none. */
export function isFollowUpQuestionnaire(canonical: string): boolean {
  return FOLLOW_UP_URLS.has(parseCanonical(canonical).url);
}

const FOLLOW_UP_URLS = new Set(Object.values(FOLLOW_UP_QUESTIONNAIRES));

const TIME_POINT_SYSTEM = 'https://norpain.no/fhir/CodeSystem/follow-up-time-point';
const BUSINESS_STATUS_SYSTEM = 'https://norpain.no/fhir/CodeSystem/follow-up-status';
export const TASK_IDENTIFIER_SYSTEM = 'https://norpain.no/fhir/NamingSystem/follow-up-task';
/** SDC's code for the Questionnaire a Task asks to be filled in (Task.input). */
const SDC_TEMP = 'http://hl7.org/fhir/uv/sdc/CodeSystem/temp';

/** Where a Task stands in the follow-up, beside its FHIR status. */
export type BusinessStatus =
  | 'scheduled' // requested, not yet sent
  | 'invited'
  | 'reminded'
  | 'answered'
  | 'expired' // no answer within the window (status failed)
  | 'episode-changed'; // the episode no longer calls for it (status cancelled)

export type OpenStatus = 'requested' | 'in-progress';

export function isOpen(task: Task): boolean {
  return task.status === 'requested' || task.status === 'in-progress';
}

/** The Task's id: a UUID (the form of every server id) derived from episode and time point. */
export function followUpTaskId(episodeId: string, timePoint: TimePoint): string {
  for (let salt = 0; ; salt++) {
    const hex = createHash('sha256').update(`${episodeId}|${timePoint}|${salt}`).digest('hex');
    // RFC 9562 UUIDv8 (custom): version 8, variant 10.
    const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
    const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    // As newServerId: an id that looks like a national id would be refused and unsearchable.
    if (!containsNationalId(id)) return id;
  }
}

export function timePointOf(task: Task): TimePoint | undefined {
  const code = task.code?.coding?.find((c) => c.system === TIME_POINT_SYSTEM)?.code;
  return code === 'baseline' || code === '12-months' ? code : undefined;
}

export function businessStatusOf(task: Task): BusinessStatus | undefined {
  return task.businessStatus?.coding?.find((c) => c.system === BUSINESS_STATUS_SYSTEM)?.code as
    BusinessStatus | undefined;
}

export function businessStatus(code: BusinessStatus): CodeableConcept {
  return { coding: [{ system: BUSINESS_STATUS_SYSTEM, code }] };
}

/** The versioned canonical (`url|version`) the Task asks to be answered. */
export function questionnaireOf(task: Task): string | undefined {
  return task.input?.find((i) => i.type.coding?.some((c) => c.system === SDC_TEMP))?.valueCanonical;
}

/** The pseudonymous Patient id the Task is for. */
export function patientOf(task: Task): string | undefined {
  const parsed = parseReference(task.for?.reference ?? '');
  return parsed.ok && parsed.reference.kind === 'literal' && parsed.reference.resourceType === 'Patient'
    ? parsed.reference.id
    : undefined;
}

export interface NewTask {
  episodeId: string;
  patientId: string;
  timePoint: TimePoint;
  /** The Questionnaire resource's id and its versioned canonical. */
  questionnaire: { id: string; canonical: string };
  start: Date;
  end: Date;
  now: Date;
}

export function newFollowUpTask(spec: NewTask): Task & { id: string } {
  return {
    resourceType: 'Task',
    id: followUpTaskId(spec.episodeId, spec.timePoint),
    identifier: [{ system: TASK_IDENTIFIER_SYSTEM, value: `${spec.episodeId}/${spec.timePoint}` }],
    status: 'requested',
    businessStatus: businessStatus('scheduled'),
    intent: 'order',
    code: { coding: [{ system: TIME_POINT_SYSTEM, code: spec.timePoint }] },
    focus: { reference: `Questionnaire/${spec.questionnaire.id}` },
    for: { reference: `Patient/${spec.patientId}` },
    reasonReference: { reference: `EpisodeOfCare/${spec.episodeId}` },
    executionPeriod: { start: spec.start.toISOString(), end: spec.end.toISOString() },
    authoredOn: spec.now.toISOString(),
    lastModified: spec.now.toISOString(),
    input: [
      {
        type: { coding: [{ system: SDC_TEMP, code: 'questionnaire' }] },
        valueCanonical: spec.questionnaire.canonical,
      },
    ],
  };
}

/** `date` plus whole months, the day clamped to the month's length (31 January + 1 month = 28/29 February). */
export function addMonths(date: Date, months: number): Date {
  const result = new Date(date.getTime());
  const day = result.getUTCDate();
  result.setUTCDate(1);
  result.setUTCMonth(result.getUTCMonth() + months);
  const last = new Date(Date.UTC(result.getUTCFullYear(), result.getUTCMonth() + 1, 0)).getUTCDate();
  result.setUTCDate(Math.min(day, last));
  return result;
}

export function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * 86_400_000);
}
