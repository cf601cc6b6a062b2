import type { QuestionnaireResponse, Reference, Task } from '@medplum/fhirtypes';
import { errors, issue } from '../fhir/outcomes';
import { parseReference } from '../fhir/reference';
import { entryLocation, type IngestStage } from '../ingest/write';
import type { FhirStore } from '../store/FhirStore';
import { parseCanonical } from '../validation/questionnaire/canonical';
import type { DispatchLedger } from './ledger';
import { businessStatus, isFollowUpQuestionnaire, isOpen, patientOf, questionnaireOf } from './task';
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

  /**
   * After persist (and after recovery): the Task the stored response answers (`taskId`, from its
   * basedOn as sent; else matched) is completed. `lookedUp`: the match, looked up while the response was
   * being stored (`lookUp`), used when the stored response is matched by the same facts.
   */
  async responseStored(
    response: QuestionnaireResponse,
    now: Date,
    taskId?: string,
    lookedUp?: LookedUpTask,
  ): Promise<void> {
    const patient = subjectOf(response);
    if (response.id === undefined || patient === undefined || response.questionnaire === undefined) return;
    const status = taskStatusOf(response);
    if (status === undefined) return;
    const answered =
      taskId ??
      (!isFollowUpQuestionnaire(response.questionnaire)
        ? undefined
        : await (lookedUp?.facts === matchFacts(response) ? lookedUp.task : this.match(response, patient)));
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

  /**
   * The match `responseStored` will need, looked up before the response is stored: storing it changes no
   * Task, so the answer is the one a look-up after it would give (the person lock holds off the
   * scheduler meanwhile, and the Task is read again before it is changed). Undefined when none is needed.
   */
  lookUp(response: QuestionnaireResponse): LookedUpTask | undefined {
    const patient = subjectOf(response);
    // Without `authored` the answer is matched at the time it was stored: looked up then, not ahead.
    if (
      patient === undefined ||
      response.questionnaire === undefined ||
      response.authored === undefined ||
      taskStatusOf(response) === undefined ||
      !isFollowUpQuestionnaire(response.questionnaire)
    )
      return undefined;
    const task = this.match(response, patient);
    // Awaited after persist; should persist fail first, nobody awaits it.
    task.catch(() => undefined);
    return { facts: matchFacts(response), task };
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

/** A match looked up ahead, with the facts it was matched by. */
export interface LookedUpTask {
  facts: string;
  task: Promise<string | undefined>;
}

/** What a response is matched to its Task by: person, Questionnaire and when it was authored. */
function matchFacts(response: QuestionnaireResponse): string {
  return JSON.stringify([subjectOf(response), response.questionnaire, response.authored]);
}

/** The Task status a response of this status gives its Task, if any. */
function taskStatusOf(response: QuestionnaireResponse): Task['status'] | undefined {
  return response.status === 'completed' || response.status === 'amended'
    ? 'completed'
    : response.status === 'in-progress'
      ? 'in-progress'
      : undefined;
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
