import type { QuestionnaireResponse, Reference, Task } from '@medplum/fhirtypes';
import { errors, issue } from '../fhir/outcomes';
import { parseReference } from '../fhir/reference';
import { entryLocation, type IngestStage } from '../ingest/write';
import type { FhirStore } from '../store/FhirStore';
import { parseCanonical } from '../validation/questionnaire/canonical';
import type { DispatchLedger } from './ledger';
import { businessStatus, isOpen, patientOf, questionnaireOf } from './task';
import { changeTask, followUpTasks, readTask } from './taskStore';

/**
 * Closing the loop (docs/followup.md): a QuestionnaireResponse answers a follow-up Task — the one its
 * `basedOn` names, else the person's open Task for that Questionnaire whose period holds the answer's
 * `authored` time — and completes it (an answer in progress marks it in progress).
 *
 * R4 allows only CarePlan and ServiceRequest in QuestionnaireResponse.basedOn, so the Task reference is not
 * stored there (the data dictionary drops it, with a warning to the sender): `readAnsweredTask` notes it on
 * the write entry as it came, `checkAnsweredTask` (once the person is known) refuses a Task that is not a
 * follow-up Task of that person, for that Questionnaire, open when the answer was authored (422, nothing
 * stored), and after persist the Task's `output` names the response.
 */
export const readAnsweredTask: IngestStage = (write) => ({
  ...write,
  entries: write.entries.map((entry) => {
    if (entry.resource?.resourceType !== 'QuestionnaireResponse') return entry;
    const ids = (entry.resource.basedOn ?? []).map(taskIdOf);
    const index = ids.findIndex((id) => id !== undefined);
    const taskId = ids[index];
    return taskId === undefined ? entry : { ...entry, answersTask: { taskId, basedOnIndex: index } };
  }),
});

export function checkAnsweredTask(store: FhirStore): IngestStage {
  return async (write) => {
    for (const [index, entry] of write.entries.entries()) {
      if (entry.resource?.resourceType !== 'QuestionnaireResponse' || entry.answersTask === undefined)
        continue;
      const { taskId, basedOnIndex } = entry.answersTask;
      const location = entryLocation(write, index);
      const at = `${location ? `${location}.resource` : 'QuestionnaireResponse'}.basedOn[${basedOnIndex}]`;
      const task = await readTask(store, taskId);
      // One answer for a Task that does not exist and another person's: it tells nothing about others.
      const problem = task === undefined ? NOT_THE_PERSONS : mismatch(task, entry.resource);
      if (problem !== undefined) {
        throw errors.unprocessable([
          issue(
            'business-rule',
            `QuestionnaireResponse.basedOn ${problem}; send the answer with the Task of the invitation it answers, or without basedOn.`,
            at,
          ),
        ]);
      }
    }
    return write;
  };
}

const NOT_THE_PERSONS = 'names no follow-up Task of the person the answer is about';

/** Why the response cannot answer the Task, or undefined when it can. */
function mismatch(task: Task, response: QuestionnaireResponse): string | undefined {
  const patient = patientOf(task);
  if (patient === undefined || subjectOf(response) !== patient) {
    return NOT_THE_PERSONS;
  }
  const asked = questionnaireOf(task);
  if (
    asked === undefined ||
    response.questionnaire === undefined ||
    !sameQuestionnaire(asked, response.questionnaire)
  ) {
    return 'names a Task for another Questionnaire';
  }
  if (!withinPeriod(task, authoredOf(response))) {
    return `names a Task open from ${task.executionPeriod?.start} to ${task.executionPeriod?.end}, and the answer was authored outside that period`;
  }
  return undefined;
}

export class AnswerCloser {
  constructor(
    private readonly store: FhirStore,
    private readonly ledger: DispatchLedger,
  ) {}

  /** After persist (and after recovery): the Task the stored response answers (`taskId`, from its
   * basedOn as sent; else matched) is completed. */
  async responseStored(response: QuestionnaireResponse, now: Date, taskId?: string): Promise<void> {
    const patient = subjectOf(response);
    if (response.id === undefined || patient === undefined || response.questionnaire === undefined) return;
    const status: Task['status'] | undefined =
      response.status === 'completed' || response.status === 'amended'
        ? 'completed'
        : response.status === 'in-progress'
          ? 'in-progress'
          : undefined;
    if (status === undefined) return;
    const answered = taskId ?? (await this.match(response, patient));
    if (answered === undefined) return;
    const written = await changeTask(this.store, answered, (current) =>
      current && isOpen(current) && current.status !== status
        ? {
            ...current,
            status,
            businessStatus: status === 'completed' ? businessStatus('answered') : current.businessStatus,
            output: [
              {
                type: {
                  coding: [
                    { system: 'http://hl7.org/fhir/uv/sdc/CodeSystem/temp', code: 'questionnaire-response' },
                  ],
                },
                valueReference: { reference: `QuestionnaireResponse/${response.id}` },
              },
            ],
            lastModified: now.toISOString(),
          }
        : undefined,
    );
    if (written?.status === 'completed') this.ledger.closed(answered);
  }

  /** The person's open Task for this Questionnaire whose period holds the answer, the earliest first. */
  private async match(response: QuestionnaireResponse, patient: string): Promise<string | undefined> {
    const authored = authoredOf(response);
    const candidates: Task[] = [];
    for await (const task of followUpTasks(this.store, {
      patient: `Patient/${patient}`,
      status: 'requested,in-progress',
    })) {
      const asked = questionnaireOf(task);
      if (
        asked !== undefined &&
        sameQuestionnaire(asked, response.questionnaire ?? '') &&
        withinPeriod(task, authored)
      ) {
        candidates.push(task);
      }
    }
    candidates.sort(
      (a, b) => Date.parse(a.executionPeriod?.start ?? '') - Date.parse(b.executionPeriod?.start ?? ''),
    );
    return candidates[0]?.id;
  }
}

function taskIdOf(reference: Reference): string | undefined {
  const parsed = parseReference(reference.reference ?? '');
  return parsed.ok && parsed.reference.kind === 'literal' && parsed.reference.resourceType === 'Task'
    ? parsed.reference.id
    : undefined;
}

function subjectOf(response: QuestionnaireResponse): string | undefined {
  const parsed = parseReference(response.subject?.reference ?? '');
  return parsed.ok && parsed.reference.kind === 'literal' && parsed.reference.resourceType === 'Patient'
    ? parsed.reference.id
    : undefined;
}

/** The same Questionnaire (its url); the version the answer names may be a later one. */
function sameQuestionnaire(a: string, b: string): boolean {
  return parseCanonical(a).url === parseCanonical(b).url;
}

function authoredOf(response: QuestionnaireResponse): number {
  return response.authored === undefined ? Date.now() : Date.parse(response.authored);
}

function withinPeriod(task: Task, at: number): boolean {
  const start = Date.parse(task.executionPeriod?.start ?? '');
  const end = Date.parse(task.executionPeriod?.end ?? '');
  return !Number.isNaN(start) && !Number.isNaN(end) && at >= start && at <= end;
}
