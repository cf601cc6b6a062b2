import type { SearchRequest } from '@medplum/core';
import type { Resource, ResourceType } from '@medplum/fhirtypes';
import { categoryOf } from '../auth/matrix';
import { errors } from '../fhir/outcomes';
import type { FhirStore, HistoryOptions, HistoryResult, SearchResult } from '../store/FhirStore';
import { isStudyResourceType } from './approval';
import type { Study } from './view';

/**
 * What a researcher's FHIR requests read through (the router's store for a researcher token): person data
 * from the study view (view.ts), the registry's shared definitions (Questionnaires, units, studies) from
 * the store as they are. Nothing else: a resource outside both reads as 404, like one that does not exist.
 * Researchers never write; the matrix refuses their writes before any store is asked.
 *
 * The study is opened (and the token's study checked: 403 when it may not be used) on the first read of
 * person data, so that definitions stay readable to a researcher whatever their study's state.
 */
export function studyStore(openStudy: () => Promise<Study>, store: FhirStore): FhirStore {
  let opened: Promise<Study> | undefined;
  const study = () => (opened ??= openStudy());
  const definition = (type: string) => categoryOf(type) === 'definition';
  const hidden = (type: string) => errors.notFound(`${type} not found.`);
  const readOnly = (): never => {
    throw new Error('The study view is read-only');
  };
  return {
    kind: store.kind,
    read<T extends Resource>(type: ResourceType, id: string): Promise<T> {
      if (definition(type)) return store.read<T>(type, id);
      if (isStudyResourceType(type)) return study().then((s) => s.read<T>(type, id));
      return Promise.reject(hidden(type));
    },
    vread<T extends Resource>(type: ResourceType, id: string, versionId: string): Promise<T> {
      if (definition(type)) return store.vread<T>(type, id, versionId);
      if (isStudyResourceType(type)) return study().then((s) => s.read<T>(type, id, versionId));
      return Promise.reject(hidden(type));
    },
    async search<T extends Resource>(request: SearchRequest<T>): Promise<SearchResult<T>> {
      if (definition(request.resourceType)) {
        const result = await store.search(request);
        // A definition may be referred to by person data (_revinclude): that stays out.
        return { ...result, included: result.included.filter((r) => definition(r.resourceType)) };
      }
      return (await (await study()).search(request as SearchRequest)) as SearchResult<T>;
    },
    history(type: ResourceType, id: string | undefined, options?: HistoryOptions): Promise<HistoryResult> {
      if (definition(type)) return store.history(type, id, options);
      return study().then((s) => s.history(type, id, options ?? {}));
    },
    create: readOnly,
    update: readOnly,
    conditionalUpdate: readOnly,
    delete: readOnly,
    transaction: readOnly,
    erasePatientCompartment: readOnly,
    eraseResource: readOnly,
    ping: () => store.ping(),
    close: () => store.close(),
  };
}
