import type { EpisodeOfCare, Resource } from '@medplum/fhirtypes';
import { isFhirError } from '../fhir/outcomes';
import type { PersistedStep } from '../ingest/pipeline';
import type { LandedTarget } from '../ingest/recovery';
import type { PersistOutcome } from '../ingest/persist';
import type { FhirStore } from '../store/FhirStore';
import type { FollowUpScheduler } from './schedule';

/**
 * The follow-up's step after persist (src/ingest/pipeline.ts): a stored EpisodeOfCare gets its Tasks as it
 * now stands, a deleted one has them cancelled. It runs inside the write's person lock and journal intent,
 * so a reservation cannot come between the episode and its Task, and a crash before it ran leaves the
 * intent open: recovery runs `afterRecovery` for what the write stored.
 */
export function followUpStep(scheduler: FollowUpScheduler): PersistedStep {
  return async (write, outcome) => {
    for (const resource of storedResources(outcome)) {
      await resourceStored(scheduler, resource);
    }
    for (const entry of write.entries) {
      if (entry.method === 'DELETE' && entry.resourceType === 'EpisodeOfCare' && entry.id !== undefined) {
        await scheduler.episodeDeleted(entry.id);
      }
    }
  };
}

/** The same for the targets of a write that recovery found stored. */
export function followUpRecovery(
  store: FhirStore,
  scheduler: FollowUpScheduler,
): (landed: LandedTarget[]) => Promise<void> {
  return async (landed) => {
    for (const target of landed) {
      if (target.type !== 'EpisodeOfCare') continue;
      if (target.method === 'DELETE') {
        await scheduler.episodeDeleted(target.id);
      } else {
        let episode: EpisodeOfCare;
        try {
          episode = await store.read<EpisodeOfCare>(target.type, target.id);
        } catch (err) {
          // Gone since (deleted, or erased by a reservation): nothing to schedule.
          if (isFhirError(err) && (err.status === 404 || err.status === 410)) continue;
          throw err;
        }
        await scheduler.episodeStored(episode);
      }
    }
  };
}

async function resourceStored(scheduler: FollowUpScheduler, resource: Resource): Promise<void> {
  if (resource.resourceType === 'EpisodeOfCare') {
    await scheduler.episodeStored(resource as EpisodeOfCare);
  }
}

function storedResources(outcome: PersistOutcome): Resource[] {
  switch (outcome.kind) {
    case 'resource':
      return [outcome.resource];
    case 'deleted':
      return [];
    case 'transaction':
      return (outcome.bundle.entry ?? []).flatMap((entry) => (entry.resource ? [entry.resource] : []));
  }
}
