import { Operator, type Filter } from '@medplum/core';
import type { Resource, ResourceType } from '@medplum/fhirtypes';
import { unitsFilter } from '../auth/unitLabel';
import { STUDY_RESOURCE_TYPES } from '../research/approval';
import { typeInView } from '../research/scope';
import type { StudyView } from '../research/view';
import type { FhirStore } from '../store/FhirStore';
import { scanStored } from '../store/scan';

/**
 * What an export reads: the caller's view, type by type, as a stream. A researcher's source is their
 * study view (src/research/view.ts); registry staff's is the pseudonymised store of all units. The
 * engine (engine.ts) knows only this interface, so both export exactly what their reads and searches see.
 */
export interface ExportSource {
  /** The resource types this view can export, in the order an export without `_type` writes them. */
  readonly types: readonly ResourceType[];
  /** Whether `Group/{id}/$export` names a group of this view (each source below says what its groups are). */
  hasGroup(id: string): boolean;
  /** Every resource of `type` in the view: changed after `since`, of the group's persons when `group`
   * is given. Read page by page, so memory stays flat whatever the size. A resource may come as the bytes
   * of its JSON text when that is exactly what the view shows (staff: the stored resource), to spare
   * parsing it. */
  stream(type: ResourceType, opts: { since?: string; group?: string }): AsyncIterable<Resource | Buffer>;
}

/** The registry's person data: the types a study view can hold, which staff export too. */
const EXPORT_TYPES: readonly ResourceType[] = STUDY_RESOURCE_TYPES;

/**
 * Registry staff's view: every unit's pseudonymised data as stored (read from the clinical store itself:
 * staff see every resource of these types as it is, which the store's scan gives as stored text). Its
 * groups are the participating units (`Group/{RESH}`: what carries that unit's label). Reads no further
 * than `until` (the export's transactionTime), so a resource changed during the export is left for the
 * next `_since` export.
 */
export function registrySource(store: FhirStore, units: readonly string[], until: string): ExportSource {
  return {
    types: EXPORT_TYPES,
    hasGroup: (id) => units.includes(id),
    async *stream(type, opts) {
      const filters: Filter[] = [
        { code: '_lastUpdated', operator: Operator.LESS_THAN_OR_EQUALS, value: until },
      ];
      if (opts.since !== undefined) {
        filters.push({ code: '_lastUpdated', operator: Operator.GREATER_THAN, value: opts.since });
      }
      if (opts.group !== undefined) {
        filters.push(unitsFilter([opts.group]));
      }
      yield* scanStored(store, { resourceType: type, filters });
    },
  };
}

/**
 * A researcher's view: their study view (src/research/view.ts), of the types its approval covers. Its one
 * group is the study's cohort (`Group/{study id}`): everyone in the view. Like staff's, it reads no
 * further than `until` (the export's transactionTime).
 */
export function studySource(view: StudyView, until: string): ExportSource {
  return {
    types: STUDY_RESOURCE_TYPES.filter((type) => typeInView(view.study, type)),
    hasGroup: (id) => id === view.study.id,
    stream: (type, opts) =>
      view.stream(type as (typeof STUDY_RESOURCE_TYPES)[number], { since: opts.since, until }),
  };
}
