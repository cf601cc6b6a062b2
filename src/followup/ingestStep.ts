import type { EpisodeOfCare, QuestionnaireResponse, Resource } from '@medplum/fhirtypes';
import { isFhirError } from '../fhir/outcomes';
import type { PersistedStep } from '../ingest/pipeline';
import type { LandedTarget } from '../ingest/recovery';
import type { PersistOutcome } from '../ingest/persist';
import type { FhirStore } from '../store/FhirStore';
import type { AnswerCloser, LookedUpTask } from './answers';
import type { Write } from '../ingest/write';
import type { FollowUpScheduler } from './schedule';

/** What follows from a stored resource: Tasks for an episode, a completed Task for an answer. */
export interface FollowUpReactions {
  scheduler: FollowUpScheduler;
  answers: AnswerCloser;
  now?: () => Date;
}

/**
 * The follow-up's step after persist (src/ingest/pipeline.ts): a stored EpisodeOfCare gets its Tasks as it
 * now stands, a deleted one has them cancelled, a stored QuestionnaireResponse completes the Task it
 * answers. It runs inside the write's person lock and journal intent, so a reservation cannot come between
 * the episode and its Task, and a crash before it ran leaves the intent open: recovery runs
 * `followUpRecovery` for what the write stored.
 */
export function followUpStep(reactions: FollowUpReactions): PersistedStep {
  const lookedUp = new WeakMap<Write, LookedUpTask | undefined>();
  return {
    // A response written on its own, as sent (not a transaction, whose references are resolved only as it
    // is stored; not conditional, which may store nothing): its Task is looked up while it is stored.
    ahead(write) {
      const [entry] = write.entries;
      if (
        write.transaction ||
        entry?.resource?.resourceType !== 'QuestionnaireResponse' ||
        entry.answersTask !== undefined ||
        entry.ifNoneExist !== undefined ||
        entry.conditionalQuery !== undefined
      )
        return;
      lookedUp.set(write, reactions.answers.lookUp(entry.resource));
    },
    async run(write, outcome) {
      for (const [index, resource] of storedResources(outcome)) {
        await resourceStored(
          reactions,
          resource,
          write.entries[index]?.answersTask?.taskId,
          lookedUp.get(write),
        );
      }
      for (const entry of write.entries) {
        if (entry.method === 'DELETE' && entry.resourceType === 'EpisodeOfCare' && entry.id !== undefined) {
          await reactions.scheduler.episodeDeleted(entry.id);
        }
      }
    },
  };
}

/** The same for the targets of a write that recovery found stored. */
export function followUpRecovery(
  store: FhirStore,
  reactions: FollowUpReactions,
): (landed: LandedTarget[]) => Promise<void> {
  return async (landed) => {
    for (const target of landed) {
      if (target.type !== 'EpisodeOfCare' && target.type !== 'QuestionnaireResponse') continue;
      if (target.method === 'DELETE') {
        if (target.type === 'EpisodeOfCare') await reactions.scheduler.episodeDeleted(target.id);
        continue;
      }
      let resource: Resource;
      try {
        resource = await store.read(target.type, target.id);
      } catch (err) {
        // Gone since (deleted, or erased by a reservation): nothing follows from it.
        if (isFhirError(err) && (err.status === 404 || err.status === 410)) continue;
        throw err;
      }
      await resourceStored(reactions, resource);
    }
  };
}

/** `answersTask`: the Task the response named in basedOn as sent (recovery, which no longer has it,
 * matches the response to the person's open Task instead). */
async function resourceStored(
  reactions: FollowUpReactions,
  resource: Resource,
  answersTask?: string,
  lookedUp?: LookedUpTask,
): Promise<void> {
  if (resource.resourceType === 'EpisodeOfCare') {
    await reactions.scheduler.episodeStored(resource as EpisodeOfCare);
  } else if (resource.resourceType === 'QuestionnaireResponse') {
    await reactions.answers.responseStored(
      resource as QuestionnaireResponse,
      (reactions.now ?? (() => new Date()))(),
      answersTask,
      lookedUp,
    );
  }
}

/** The resources the write stored, each with the index of its write entry (a transaction answers in order). */
function storedResources(outcome: PersistOutcome): [number, Resource][] {
  switch (outcome.kind) {
    case 'resource':
      return [[0, outcome.resource]];
    case 'deleted':
      return [];
    case 'transaction':
      return (outcome.bundle.entry ?? []).flatMap((entry, index): [number, Resource][] =>
        entry.resource ? [[index, entry.resource]] : [],
      );
  }
}
