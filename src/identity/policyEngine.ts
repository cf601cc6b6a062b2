import { tryGetDataType } from '@medplum/core';
import type { Identifier, Reference, Resource } from '@medplum/fhirtypes';
import { type DataDictionary, refuseOutOfScope } from '../dictionary';
import {
  type ElementEntry,
  type ExtensionEntry,
  municipalityAddressElements,
  municipalityExtensionUrls,
  publicIdentifierSystems,
  redactedNationalIdText,
} from '../dictionary/dictionary';
import { terminology } from '../dictionary/terminology';
import { errors, issue } from '../fhir/outcomes';
import { containsNationalId, nationalIdKindOf, redactNationalIdsWith } from './nationalId';
import { isHashedIdentifierValue, registryPseudonymSystem } from './pseudonym';

/**
 * Applies the data dictionary (src/dictionary) to resources on their way into the clinical store: an
 * allow-list. It walks each resource with the FHIR R4 type of every element (from @medplum/core's schema)
 * and keeps an element only if the dictionary names it, applying the element's transform (pseudonym,
 * year-month, municipality, keyed hash) and its code binding; every Reference to a person is rewritten to
 * the pseudonymous Patient. What is not kept is reported through `PolicyContext.notStored` (the sender
 * gets it as a warning); what the registry must not receive is refused with a 422 FhirError:
 *
 * - a national id (by its identifier system or type) anywhere but Patient.identifier and a reference to
 *   the person (Reference.identifier);
 * - a kept value that is not free text (a code, URI, reference, linkId) but contains a national id;
 * - a modifierExtension (it would change the meaning of what is stored; FHIR says refuse it).
 *
 * Free text is kept only where the dictionary names it, with national ids blanked. Definitions
 * (Questionnaire, ResearchStudy, Organization) are kept whole, free text blanked the same way. Rule
 * look-ups are compiled once per (type, path) and cached, which keeps the walk fast (bench/pseudonymise).
 *
 * Requires the FHIR definitions to be loaded (src/fhir/definitions.ts loadFhirDefinitions()).
 */
export interface PolicyContext {
  /** The identifier list that replaces Patient.identifier (transform `pseudonym`). */
  patientIdentifiers?: Identifier[];
  /** A literal or urn:uuid reference to a Patient: its pseudonymous replacement ("Patient/<id>"), or
   * undefined to keep it. May throw a FhirError naming `expression` for a Patient the registry does not know. */
  rewritePatientReference(reference: string, expression: string): string | undefined;
  /** A reference by national id (validated, linked in the vault): "Patient/<id>". `expression` names it for errors. */
  referenceForNationalId(identifier: Identifier, expression: string): string;
  /** The keyed hash of a business identifier value. */
  hashIdentifier(system: string | undefined, value: string): string;
  /** An element was not stored: `path` is its element path (no indices), `reason` says why. */
  notStored?(path: string, reason: string): void;
  /** Where an element path stands for the client (in a transaction: inside its entry). Default: as is. */
  expression?(path: string): string;
}

type Binding = ElementEntry['codes'];

interface Step {
  /** FHIR type code of the element (inner backbone types by their medplum name, e.g. "PatientContact"). */
  type: string;
  /** Element path without indices, choice elements by their JSON name, e.g. "Condition.onsetDateTime". */
  path: string;
  /** What the dictionary says of it; undefined: not stored. */
  entry?: ElementEntry;
  primitive: boolean;
  /** The code systems a Coding here must come from. */
  binding: Binding;
  /** Inside a definition: every element is kept. */
  definition: boolean;
}

const FREE_TEXT_TYPES = new Set(['string', 'markdown']);
const MUNICIPALITY_SYSTEMS = new Map(
  [terminology.kommunenummer, terminology.kommunenummerOid].map((system) => [system.url, system]),
);
const DEFINITION_ENTRY: ElementEntry = { why: 'part of a definition' };
const REFUSED: ElementEntry = { why: 'refused: a modifier extension the registry cannot interpret' };

const notNamed =
  'Not stored: the NorPain data dictionary does not include this element. Leave it out to silence this warning.';

export class PolicyEngine {
  private readonly entries = new Map<string, ElementEntry>();
  private readonly plans = new Map<string, Map<string, Step | null>>();

  constructor(private readonly dictionary: DataDictionary) {
    for (const [type, resource] of Object.entries(dictionary.resources)) {
      for (const [name, entry] of Object.entries(resource.elements ?? {})) {
        this.entries.set(`${type}.${name}`, entry);
      }
    }
    for (const [path, entry] of Object.entries(dictionary.dataTypes)) {
      this.entries.set(path, entry);
    }
  }

  /** The resource as the dictionary lets it be stored (a new object; the input is not changed). */
  apply<T extends Resource>(resource: T, ctx: PolicyContext): T {
    refuseOutOfScope(this.dictionary, resource.resourceType, 'resourceType');
    if (this.dictionary.resources[resource.resourceType]?.definition !== true) {
      refuseContainedPatient(resource, ctx);
    }
    return (this.walkObject(
      resource as unknown as Record<string, unknown>,
      resource.resourceType,
      resource.resourceType,
      ctx,
    ) ?? {
      resourceType: resource.resourceType,
    }) as T;
  }

  private walkObject(
    node: Record<string, unknown>,
    type: string,
    path: string,
    ctx: PolicyContext,
    binding?: Binding,
  ): Record<string, unknown> | undefined {
    const plan = this.planFor(type, path);
    const out: Record<string, unknown> = {};
    let kept = 0;
    for (const key in node) {
      const value = node[key];
      if (key === 'resourceType') {
        out[key] = value;
        continue;
      }
      if (value === undefined || value === null) {
        continue;
      }
      const step = this.stepFor(plan, type, path, key, binding);
      if (!step) {
        ctx.notStored?.(`${path}.${key}`, notNamed);
        continue;
      }
      const result = this.applyStep(value, step, ctx);
      if (result !== undefined) {
        out[key] = result;
        kept++;
      }
    }
    if (kept === 0 && out.resourceType === undefined) {
      return undefined;
    }
    return out;
  }

  private applyStep(value: unknown, step: Step, ctx: PolicyContext): unknown {
    if (step.entry?.transform === 'pseudonym') {
      return ctx.patientIdentifiers;
    }
    if (Array.isArray(value)) {
      const items: unknown[] = [];
      for (const item of value) {
        const result = item === null ? undefined : this.applyOne(item, step, ctx);
        if (result !== undefined && result !== null) {
          items.push(result);
        }
      }
      return items.length > 0 ? items : undefined;
    }
    return this.applyOne(value, step, ctx);
  }

  private applyOne(value: unknown, step: Step, ctx: PolicyContext): unknown {
    switch (step.entry?.transform) {
      case 'year-month':
        return generaliseYearMonth(value);
      case 'municipality':
        return generaliseAddress(value);
      case 'keyed-hash':
        return this.hashIdentifierNode(value, step, ctx);
    }
    if (step.primitive) {
      return this.primitive(value, step, ctx);
    }
    if (value === null || typeof value !== 'object') {
      return undefined; // a primitive where an object belongs: invalid, drop it
    }
    switch (step.type) {
      case 'Reference':
        return this.reference(value as Record<string, unknown>, step, ctx);
      case 'Identifier':
        return this.hashIdentifierNode(value, step, ctx);
      case 'Extension':
        if (!step.definition) {
          return this.extension(value as Record<string, unknown>, step, ctx);
        }
        break;
      case 'Coding':
        if (!step.definition) {
          return this.coding(value as Record<string, unknown>, step.path, step.binding, ctx);
        }
        break;
    }
    return this.walkValue(value as Record<string, unknown>, step, ctx);
  }

  private walkValue(record: Record<string, unknown>, step: Step, ctx: PolicyContext): unknown {
    if (step.type === 'Resource' || step.type === 'DomainResource') {
      const resourceType = record.resourceType;
      if (typeof resourceType !== 'string' || !tryGetDataType(resourceType)) {
        return undefined;
      }
      return this.walkObject(record, resourceType, step.path, ctx);
    }
    return this.walkObject(record, step.type, step.path, ctx, step.binding);
  }

  /** A kept primitive: free text with national ids blanked; any other value must not hold one. */
  private primitive(value: unknown, step: Step, ctx: PolicyContext): unknown {
    if (typeof value !== 'string') {
      return typeof value === 'object' ? undefined : value;
    }
    if (step.entry?.freeText || (step.definition && FREE_TEXT_TYPES.has(step.type))) {
      return redactNationalIds(value);
    }
    if (step.entry?.values && !step.entry.values.includes(value)) {
      ctx.notStored?.(
        step.path,
        `Not stored: only these values are kept here: ${step.entry.values.join(', ')}.`,
      );
      return undefined;
    }
    refuseNationalId(value, step.path, ctx);
    return value;
  }

  /** A Coding is kept only if its system is bound to the element and its code is one of that system's. */
  private coding(
    value: Record<string, unknown>,
    path: string,
    binding: Binding,
    ctx: PolicyContext,
  ): unknown {
    if (binding === 'questionnaire') {
      return this.walkObject(value, 'Coding', path, ctx, binding);
    }
    const system = binding?.find((entry) => entry.url === value.system);
    if (system === undefined) {
      ctx.notStored?.(
        path,
        binding === undefined || binding.length === 0
          ? 'Not stored: the NorPain data dictionary keeps no codes in this element.'
          : `Not stored: a code from a code system not accepted here. Accepted: ${binding.map((s) => `${s.name} (${s.url})`).join('; ')}.`,
      );
      return undefined;
    }
    if (typeof value.code === 'string' && system.codes?.accepts(value.code) === false) {
      refuseNationalId(value.code, `${path}.code`, ctx);
      ctx.notStored?.(
        path,
        `Not stored: the code is not a code of ${system.name} (${system.url}); its codes are ${system.codes.looksLike}.`,
      );
      return undefined;
    }
    return this.walkObject(value, 'Coding', path, ctx, binding);
  }

  private reference(value: Record<string, unknown>, step: Step, ctx: PolicyContext): unknown {
    if (value.display !== undefined) {
      ctx.notStored?.(`${step.path}.display`, 'Not stored: free text is not kept in this element.');
    }
    const out = this.rewriteReference(value, step, ctx) as Record<string, unknown> | undefined;
    if (typeof out?.reference === 'string' && containsNationalId(out.reference)) {
      throw errors.unprocessable([
        issue(
          'business-rule',
          'A reference must not contain a national id. Refer to the person through the Patient (Reference.identifier with the national id, or the Patient id the server returned), and to anything else by the id this server assigned.',
          locate(ctx, `${step.path}.reference`),
        ),
      ]);
    }
    return out;
  }

  /** An extension is kept only if the dictionary names its URL where it stands. */
  private extension(value: Record<string, unknown>, step: Step, ctx: PolicyContext): unknown {
    if (step.path.endsWith('.modifierExtension')) {
      throw errors.unprocessable([
        issue(
          'not-supported',
          'The registry does not accept modifier extensions: it cannot know how they change the meaning of what it would store. Remove it, or send the resource without the modification.',
          locate(ctx, step.path),
        ),
      ]);
    }
    return this.walkExtension(value, step.entry?.extensions ?? {}, step.path, ctx);
  }

  private walkExtension(
    value: Record<string, unknown>,
    entries: Readonly<Record<string, ExtensionEntry>>,
    path: string,
    ctx: PolicyContext,
  ): unknown {
    const url = value.url;
    const rule = typeof url === 'string' && Object.hasOwn(entries, url) ? entries[url] : undefined;
    if (!rule) {
      ctx.notStored?.(path, 'Not stored: an extension the NorPain data dictionary does not include.');
      return undefined;
    }
    const here = `${path}('${url as string}')`;
    const out: Record<string, unknown> = { url };
    for (const key in value) {
      const child = value[key];
      if (key === 'url') {
        continue;
      }
      if (key === 'extension' && Array.isArray(child)) {
        const kept = child
          .map((c: unknown) =>
            c && typeof c === 'object'
              ? this.walkExtension(
                  c as Record<string, unknown>,
                  rule.extensions ?? {},
                  `${here}.extension`,
                  ctx,
                )
              : undefined,
          )
          .filter((c) => c !== undefined);
        if (kept.length > 0) {
          out.extension = kept;
        }
      } else if (key === rule.value && key === 'valueCoding' && child && typeof child === 'object') {
        const coding = this.coding(child as Record<string, unknown>, `${here}.${key}`, rule.codes, ctx);
        if (coding !== undefined) {
          out[key] = coding;
        }
      } else if (key === rule.value && (typeof child !== 'object' || child === null)) {
        if (typeof child === 'string') {
          refuseNationalId(child, `${here}.${key}`, ctx);
        }
        out[key] = child;
      } else {
        ctx.notStored?.(`${here}.${key}`, notNamed);
      }
    }
    return Object.keys(out).length > 1 ? out : undefined;
  }

  private planFor(type: string, path: string): Map<string, Step | null> {
    const cacheKey = `${type}@${path}`;
    let plan = this.plans.get(cacheKey);
    if (!plan) {
      plan = new Map();
      this.plans.set(cacheKey, plan);
    }
    return plan;
  }

  private stepFor(
    plan: Map<string, Step | null>,
    type: string,
    path: string,
    key: string,
    binding: Binding,
  ): Step | undefined {
    let step = plan.get(key);
    if (step === undefined) {
      step = this.compileStep(type, path, key, binding);
      plan.set(key, step);
    }
    return step ?? undefined;
  }

  private compileStep(type: string, path: string, key: string, binding: Binding): Step | null {
    const schema = tryGetDataType(type);
    if (!schema) {
      return null;
    }
    const root = path.indexOf('.') < 0 ? path : path.slice(0, path.indexOf('.'));
    const definition = this.dictionary.resources[root]?.definition === true;
    const isShadow = key.charCodeAt(0) === 95; // "_": a primitive's id/extensions
    if (isShadow) {
      // Kept whole in definitions; elsewhere the only extension on a primitive the registry keeps (the
      // municipality code on Address.district) is handled by the municipality transform.
      return definition
        ? {
            type: 'Element',
            path: `${path}.${key}`,
            primitive: false,
            binding,
            definition,
            entry: DEFINITION_ENTRY,
          }
        : null;
    }
    if (key === 'modifierExtension' && !definition) {
      return {
        type: 'Extension',
        path: `${path}.${key}`,
        primitive: false,
        binding,
        definition,
        entry: REFUSED,
      };
    }
    let elementType: string | undefined;
    const direct = schema.elements[key];
    if (direct) {
      elementType = direct.type[0]?.code;
    } else {
      for (const [name, element] of Object.entries(schema.elements)) {
        if (!name.endsWith('[x]')) {
          continue;
        }
        const base = name.slice(0, -3);
        if (!key.startsWith(base)) {
          continue;
        }
        const suffix = key.slice(base.length);
        const match = element.type.find((t) => t.code.charAt(0).toUpperCase() + t.code.slice(1) === suffix);
        if (match) {
          elementType = match.code;
          break;
        }
      }
    }
    if (!elementType) {
      return null;
    }
    if (elementType.startsWith('http://hl7.org/fhirpath/System.')) {
      elementType = 'string';
    }
    const childPath = `${path}.${key}`;
    const entry = definition
      ? DEFINITION_ENTRY
      : (this.entries.get(childPath) ?? this.entries.get(`${schema.path}.${key}`));
    if (!entry) {
      return null;
    }
    const primitive = elementType.charAt(0) === elementType.charAt(0).toLowerCase();
    return {
      type: elementType,
      path: childPath,
      entry,
      primitive,
      binding: entry.codes ?? binding,
      definition,
    };
  }

  // ---- transforms ----

  private hashIdentifierNode(value: unknown, step: Step, ctx: PolicyContext): unknown {
    if (value === null || typeof value !== 'object') {
      return undefined;
    }
    const identifier = value as Identifier & Record<string, unknown>;
    if (nationalIdKindOf(identifier)) {
      if (step.path.endsWith('.identifier') && this.entries.get('Reference.identifier') === step.entry) {
        // Beside a literal reference to the person: the reference says who; the national id is not kept.
        ctx.notStored?.(
          step.path,
          'Not stored: the reference already names the person; the national id is not kept.',
        );
        return undefined;
      }
      throw errors.unprocessable([
        issue(
          'business-rule',
          'The registry receives a national id only in Patient.identifier, or in Reference.identifier of a reference to the person. Remove it from this element.',
          locate(ctx, step.path),
        ),
      ]);
    }
    const raw = identifier.value;
    const rest: Record<string, unknown> = {};
    for (const key in identifier) {
      if (key !== 'value' && key !== '_value') {
        rest[key] = identifier[key];
      }
    }
    const walked = this.walkObject(rest, 'Identifier', step.path, ctx) ?? {};
    const system = identifier.system;
    if (typeof raw !== 'string') {
      return Object.keys(walked).length > 0 ? walked : undefined;
    }
    const kept =
      system === registryPseudonymSystem ||
      (system !== undefined && publicIdentifierSystems.has(system)) ||
      isHashedIdentifierValue(raw);
    return { ...walked, value: kept ? raw : ctx.hashIdentifier(system, raw) };
  }

  private rewriteReference(value: unknown, step: Step, ctx: PolicyContext): unknown {
    if (value === null || typeof value !== 'object') {
      return undefined;
    }
    const source = value as Reference & Record<string, unknown>;
    let reference = source.reference;
    const identifier = source.identifier;
    let dropIdentifier = false;
    if (typeof reference === 'string') {
      reference = ctx.rewritePatientReference(reference, `${step.path}.reference`) ?? reference;
    } else if (identifier && nationalIdKindOf(identifier)) {
      reference = ctx.referenceForNationalId(identifier, `${step.path}.identifier`);
      dropIdentifier = true;
    } else if (identifier?.system === registryPseudonymSystem && typeof identifier.value === 'string') {
      reference = ctx.rewritePatientReference(
        `Patient?identifier=${registryPseudonymSystem}|${identifier.value}`,
        `${step.path}.identifier`,
      );
    }
    const rest: Record<string, unknown> = {};
    for (const key in source) {
      if (
        key !== 'reference' &&
        key !== 'display' &&
        key !== '_display' &&
        !(dropIdentifier && key === 'identifier')
      ) {
        rest[key] = source[key];
      }
    }
    const out = (this.walkObject(rest, 'Reference', step.path, ctx) ?? {}) as Record<string, unknown>;
    if (reference !== undefined) {
      out.reference = reference;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
}

function locate(ctx: PolicyContext, path: string): string {
  return ctx.expression ? ctx.expression(path) : path;
}

/**
 * Contained resources are not stored, so a person named by a contained Patient would be linked to no
 * Patient: what refers to it would belong to no one, and no reservation could find it.
 */
function refuseContainedPatient(resource: Resource, ctx: PolicyContext): void {
  const contained = (resource as { contained?: unknown }).contained;
  const issues = (Array.isArray(contained) ? contained : []).flatMap((c, i) =>
    (c as { resourceType?: unknown } | null)?.resourceType === 'Patient'
      ? [
          issue(
            'business-rule',
            'A person is named by a reference to their Patient (Patient/<id> as the server returned it) or by Reference.identifier with the national id, not by a contained Patient: the registry does not store contained resources, so the person could not be linked. Nothing was stored.',
            locate(ctx, `${resource.resourceType}.contained[${i}]`),
          ),
        ]
      : [],
  );
  if (issues.length > 0) {
    throw errors.unprocessable(issues);
  }
}

function refuseNationalId(value: string, path: string, ctx: PolicyContext): void {
  if (containsNationalId(value)) {
    throw errors.unprocessable([
      issue(
        'business-rule',
        'This element must not contain a national id: the registry receives national ids only in Patient.identifier or in a reference to the person. Remove it.',
        locate(ctx, path),
      ),
    ]);
  }
}

/** Only the municipality code (kommunenummer) of an address extension: url and the code's system and code. */
function keepMunicipalityExtensions(extensions: unknown): unknown[] | undefined {
  if (!Array.isArray(extensions)) {
    return undefined;
  }
  const kept: unknown[] = [];
  for (const e of extensions) {
    const extension = e as { url?: unknown; valueCoding?: { system?: unknown; code?: unknown } } | null;
    const coding = extension?.valueCoding;
    if (
      typeof extension?.url === 'string' &&
      municipalityExtensionUrls.has(extension.url) &&
      typeof coding?.system === 'string' &&
      typeof coding.code === 'string' &&
      MUNICIPALITY_SYSTEMS.get(coding.system)?.codes?.accepts(coding.code) === true
    ) {
      kept.push({ url: extension.url, valueCoding: { system: coding.system, code: coding.code } });
    }
  }
  return kept.length > 0 ? kept : undefined;
}

function generaliseYearMonth(value: unknown): unknown {
  if (typeof value !== 'string') {
    return undefined;
  }
  return value.length > 7 ? value.slice(0, 7) : value;
}

/** Blanks every 11-digit run (also "DDMMYY NNNNN") whose check digits make it a possible national id. */
function redactNationalIds(text: string): string {
  return redactNationalIdsWith(text, redactedNationalIdText);
}

function generaliseAddress(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    return undefined;
  }
  const address = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const extensions = keepMunicipalityExtensions(address.extension);
  if (extensions) {
    out.extension = extensions;
  }
  for (const name of municipalityAddressElements) {
    if (typeof address[name] === 'string') {
      out[name] = redactNationalIds(address[name]);
    }
    const shadow = address[`_${name}`] as { extension?: unknown } | undefined;
    const shadowExtensions = keepMunicipalityExtensions(shadow?.extension);
    if (shadowExtensions) {
      out[`_${name}`] = { extension: shadowExtensions };
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
