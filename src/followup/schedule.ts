import type { EpisodeOfCare, Questionnaire, Task } from '@medplum/fhirtypes';
import { unitsOf, withUnitLabels } from '../auth/unitLabel';
import { EPISODE_EXTENSIONS } from '../dictionary/dictionary';
import { terminology } from '../dictionary/terminology';
import { parseReference } from '../fhir/reference';
import type { FhirStore } from '../store/FhirStore';
import { compareVersions } from '../validation/questionnaire/canonical';
import type { QuestionnaireSource } from '../validation/questionnaire/registry';
import type { DispatchLedger } from './ledger';
import type { FollowUpSettings } from './settings';
import {
  addDays,
  addMonths,
  businessStatus,
  businessStatusOf,
  FOLLOW_UP_QUESTIONNAIRES,
  followUpTaskId,
  isOpen,
  newFollowUpTask,
  type TimePoint,
} from './task';
import { changeTask, readTask } from './taskStore';

export interface SchedulerDeps {
  store: FhirStore;
  questionnaires: QuestionnaireSource;
  ledger: DispatchLedger;
  settings: FollowUpSettings;
  now?: () => Date;
}

/** What a time point's Task should be for an episode as it now stands: its period, or why there is none. */
type Wanted = { start: Date; end: Date } | { none: string };

/**
 * Keeps an episode's follow-up Tasks as its stored state calls for (DESIGN §9; docs/followup.md): the
 * baseline Task once right to care is granted, the 12-month Task once the episode has ended (period.end +
 * FOLLOWUP_DELAY_MONTHS) after lasting at least FOLLOWUP_MIN_EPISODE_DAYS. It derives everything from the
 * episode, so running it again for the same episode (re-sent data, recovery after a crash) writes nothing
 * new; a changed end date moves the open Task; an episode no longer ended (or deleted) cancels it. A Task
 * that was answered or expired is left as it is. Reserved persons never get here: their writes are refused
 * before persist, and the reservation erases their Tasks.
 */
export class FollowUpScheduler {
  private readonly now: () => Date;

  constructor(private readonly deps: SchedulerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** Brings the episode's Tasks in line with the episode as stored. */
  async episodeStored(episode: EpisodeOfCare): Promise<void> {
    const episodeId = episode.id;
    const patient = parseReference(episode.patient?.reference ?? '');
    if (
      episodeId === undefined ||
      !patient.ok ||
      patient.reference.kind !== 'literal' ||
      patient.reference.resourceType !== 'Patient'
    ) {
      return;
    }
    const patientId = patient.reference.id;
    await this.reconcile(episode, episodeId, patientId, 'baseline', this.wantedBaseline(episode, episodeId));
    await this.reconcile(episode, episodeId, patientId, '12-months', this.wantedFollowUp(episode));
  }

  /** The episode was deleted: its open Tasks are cancelled. */
  async episodeDeleted(episodeId: string): Promise<void> {
    for (const timePoint of ['baseline', '12-months'] as const) {
      await this.cancel(followUpTaskId(episodeId, timePoint), 'The episode was deleted.');
    }
  }

  private wantedBaseline(episode: EpisodeOfCare, episodeId: string): Wanted | Promise<Wanted> {
    const decision = episode.extension
      ?.find((e) => e.url === EPISODE_EXTENSIONS.rightToCare)
      ?.extension?.find((e) => e.url === 'decision')?.valueCoding;
    if (decision?.system !== terminology.rightToCare.url || decision.code !== 'granted') {
      return { none: 'Right to care is not granted for the episode.' };
    }
    // Due from when the grant was first registered: a Task already scheduled keeps its period.
    return baselinePeriod(
      this.deps.store,
      followUpTaskId(episodeId, 'baseline'),
      this.now(),
      this.deps.settings,
    );
  }

  private wantedFollowUp(episode: EpisodeOfCare): Wanted {
    const end = episode.period?.end;
    const start = episode.period?.start;
    if (end === undefined) return { none: 'The episode has not ended.' };
    const ended = new Date(end);
    if (
      start !== undefined &&
      ended.getTime() - new Date(start).getTime() < this.deps.settings.minEpisodeDays * 86_400_000
    ) {
      return { none: `The episode lasted less than ${this.deps.settings.minEpisodeDays} days.` };
    }
    const due = addMonths(ended, this.deps.settings.delayMonths);
    return { start: due, end: addDays(due, this.deps.settings.answerDays) };
  }

  private async reconcile(
    episode: EpisodeOfCare,
    episodeId: string,
    patientId: string,
    timePoint: TimePoint,
    wantedNow: Wanted | Promise<Wanted>,
  ): Promise<void> {
    const wanted = await wantedNow;
    const id = followUpTaskId(episodeId, timePoint);
    if ('none' in wanted) {
      await this.cancel(id, wanted.none);
      return;
    }
    const questionnaire = await this.currentQuestionnaire(timePoint);
    const now = this.now();
    const units = unitsOf(episode);
    const written = await changeTask(this.deps.store, id, (current) => {
      const fresh = withUnitLabels(
        newFollowUpTask({
          episodeId,
          patientId,
          timePoint,
          questionnaire,
          start: wanted.start,
          end: wanted.end,
          now,
        }),
        units,
      );
      if (current === undefined) return fresh;
      if (isOpen(current) || businessStatusOf(current) === 'episode-changed') {
        const next: Task = {
          ...current,
          status: isOpen(current) ? current.status : 'requested',
          businessStatus: isOpen(current) ? current.businessStatus : businessStatus('scheduled'),
          statusReason: isOpen(current) ? current.statusReason : undefined,
          executionPeriod: fresh.executionPeriod,
          meta: withUnitLabels(current, units).meta,
        };
        return sameSchedule(current, next) ? undefined : { ...next, lastModified: now.toISOString() };
      }
      return undefined; // answered or expired: history, not to be moved
    });
    if (written && isOpen(written)) this.deps.ledger.opened(id, patientId);
    else this.deps.ledger.closed(id);
  }

  private async cancel(id: string, reason: string): Promise<void> {
    const now = this.now();
    const written = await changeTask(this.deps.store, id, (current) =>
      current && isOpen(current)
        ? {
            ...current,
            status: 'cancelled',
            businessStatus: businessStatus('episode-changed'),
            statusReason: { text: reason },
            lastModified: now.toISOString(),
          }
        : undefined,
    );
    if (written !== undefined && !isOpen(written)) this.deps.ledger.closed(id);
  }

  /** The newest version of the time point's Questionnaire, which the Task pins. */
  private async currentQuestionnaire(timePoint: TimePoint): Promise<{ id: string; canonical: string }> {
    const url = FOLLOW_UP_QUESTIONNAIRES[timePoint];
    const found = (await this.deps.questionnaires.find(url))
      .filter(
        (q): q is Questionnaire & { id: string; version: string } =>
          q.id !== undefined && q.version !== undefined,
      )
      .sort((a, b) => compareVersions(b.version, a.version))[0];
    if (found === undefined) {
      throw new Error(`The follow-up Questionnaire ${url} is not loaded`);
    }
    return { id: found.id, canonical: `${url}|${found.version}` };
  }
}

/** The baseline period: the open Task's if there is one, else from now for FOLLOWUP_ANSWER_DAYS. */
async function baselinePeriod(
  store: FhirStore,
  id: string,
  now: Date,
  settings: FollowUpSettings,
): Promise<Wanted> {
  const current = await readTask(store, id);
  const start = current?.executionPeriod?.start;
  const end = current?.executionPeriod?.end;
  if (current !== undefined && isOpen(current) && start !== undefined && end !== undefined) {
    return { start: new Date(start), end: new Date(end) };
  }
  return { start: now, end: addDays(now, settings.answerDays) };
}

function sameSchedule(a: Task, b: Task): boolean {
  return (
    a.status === b.status &&
    JSON.stringify(a.businessStatus) === JSON.stringify(b.businessStatus) &&
    instant(a.executionPeriod?.start) === instant(b.executionPeriod?.start) &&
    instant(a.executionPeriod?.end) === instant(b.executionPeriod?.end) &&
    JSON.stringify(a.meta?.security ?? []) === JSON.stringify(b.meta?.security ?? [])
  );
}

/** A dateTime as an instant, so that a store writing it in another form is no change. */
function instant(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Date.parse(value);
}
