import { tryGetDataType } from '@medplum/core';
import type { Identifier, Reference, Resource } from '@medplum/fhirtypes';
import {
  municipalityAddressElements,
  municipalityExtensionUrls,
  type PolicyRule,
  publicIdentifierSystems,
  redactedNationalIdText,
} from '../ingest/pseudonymisation-policy';
import { nationalIdKindOf, redactNationalIdsWith } from './nationalId';
import { isHashedIdentifierValue, registryPseudonymSystem } from './pseudonym';

/**
 * Applies a declarative pseudonymisation policy (src/ingest/pseudonymisation-policy.ts) to resources.
 * It walks each resource with the FHIR R4 type of every element (from @medplum/core's schema), so a
 * rule "nodesByType('HumanName')" finds names wherever they are: in Patient, in a contained
 * RelatedPerson, inside an extension value. Rule lookups are compiled once per (type, path) and cached,
 * which keeps the walk fast enough for bulk loads (bench/pseudonymise).
 *
 * Requires the FHIR definitions to be loaded (src/fhir/definitions.ts loadFhirDefinitions()); without
 * them no element is known and everything but resourceType is removed.
 */
export interface PolicyContext {
  /** The identifier list that replaces Patient.identifier (method `pseudonym`). */
  patientIdentifiers?: Identifier[];
  /** A literal or urn:uuid reference to a Patient: its pseudonymous replacement ("Patient/<id>"), or
   * undefined to keep it. May throw a FhirError naming `expression` for a Patient the registry does not know. */
  rewritePatientReference(reference: string, expression: string): string | undefined;
  /** A reference by national id (validated, linked in the vault): "Patient/<id>". `expression` names it for errors. */
  referenceForNationalId(identifier: Identifier, expression: string): string;
  /** The keyed hash of a business identifier value. */
  hashIdentifier(system: string | undefined, value: string): string;
}

type Handler = (value: unknown, step: Step, ctx: PolicyContext) => unknown;

interface Step {
  /** FHIR type code of the element (inner backbone types by their medplum name, e.g. "PatientContact"). */
  type: string;
  /** Element path without indices or choice suffix, e.g. "Patient.contact.name". */
  path: string;
  rule?: PolicyRule;
  primitive: boolean;
}

export class PolicyEngine {
  private readonly pathRules = new Map<string, PolicyRule>();
  private readonly wildcardRules = new Map<string, PolicyRule>();
  private readonly typeRules = new Map<string, PolicyRule>();
  private readonly plans = new Map<string, Map<string, Step | null>>();
  private readonly handlers: Record<PolicyRule['method'], Handler>;

  constructor(policy: readonly PolicyRule[]) {
    for (const rule of policy) {
      const byType = /^nodesByType\('([A-Za-z]+)'\)$/.exec(rule.path);
      if (byType) {
        if (!this.typeRules.has(byType[1])) {
          this.typeRules.set(byType[1], rule);
        }
      } else if (rule.path.endsWith('.*')) {
        this.wildcardRules.set(rule.path.slice(0, -2), rule);
      } else if (/^[A-Z][A-Za-z]*(\.[a-z][A-Za-z]*)*$/.test(rule.path)) {
        if (!this.pathRules.has(rule.path)) {
          this.pathRules.set(rule.path, rule);
        }
      } else {
        throw new Error(`unsupported policy path: ${rule.path}`);
      }
    }
    this.handlers = {
      keep: (value, step, ctx) => this.walkValue(value, step, ctx),
      remove: () => undefined,
      pseudonym: (_value, _step, ctx) => ctx.patientIdentifiers,
      generalise: (value, step) =>
        step.rule?.to === 'year-month' ? generaliseYearMonth(value) : generaliseAddress(value),
      'keyed-hash': (value, step, ctx) => this.hashIdentifierNode(value, step, ctx),
      'patient-reference': (value, step, ctx) => this.rewriteReference(value, step, ctx),
      'redact-national-ids': (value) => (typeof value === 'string' ? redactNationalIds(value) : value),
    };
  }

  /** The resource as the policy lets it be stored (a new object; the input is not changed). */
  apply<T extends Resource>(resource: T, ctx: PolicyContext): T {
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
      const isShadow = key.charCodeAt(0) === 95; // "_": a primitive's id/extensions, governed by its element
      const step = this.stepFor(plan, type, path, isShadow ? key.slice(1) : key);
      if (!step) {
        continue; // not a FHIR R4 element of this type: fail closed
      }
      let result: unknown;
      if (isShadow) {
        const method = step.rule?.method;
        result =
          method === undefined || method === 'keep' || method === 'redact-national-ids'
            ? this.walkShadow(value, step, ctx)
            : undefined;
      } else {
        result = this.applyStep(value, step, ctx);
      }
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
    const handler = step.rule ? this.handlers[step.rule.method] : undefined;
    if (Array.isArray(value) && step.rule?.method !== 'pseudonym') {
      const items: unknown[] = [];
      for (const item of value) {
        const result = handler ? handler(item, step, ctx) : this.walkValue(item, step, ctx);
        if (result !== undefined && result !== null) {
          items.push(result);
        }
      }
      return items.length > 0 ? items : undefined;
    }
    return handler ? handler(value, step, ctx) : this.walkValue(value, step, ctx);
  }

  private walkValue(value: unknown, step: Step, ctx: PolicyContext): unknown {
    if (value === null || typeof value !== 'object') {
      return value;
    }
    if (Array.isArray(value)) {
      return this.applyStep(value, { ...step, rule: undefined }, ctx);
    }
    const record = value as Record<string, unknown>;
    if (step.type === 'Resource' || step.type === 'DomainResource') {
      const resourceType = record.resourceType;
      if (typeof resourceType !== 'string' || !tryGetDataType(resourceType)) {
        return undefined;
      }
      return this.walkObject(record, resourceType, resourceType, ctx);
    }
    if (step.primitive) {
      return undefined; // an object where a primitive belongs: invalid, drop it
    }
    return this.walkObject(record, step.type, step.path, ctx);
  }

  private walkShadow(value: unknown, step: Step, ctx: PolicyContext): unknown {
    const elementStep: Step = { type: 'Element', path: step.path, primitive: false };
    if (Array.isArray(value)) {
      const items = value.map((item) =>
        item === null
          ? null
          : (this.walkObject(item as Record<string, unknown>, 'Element', step.path, ctx) ?? null),
      );
      return items.some((item) => item !== null) ? items : undefined;
    }
    return this.walkValue(value, elementStep, ctx);
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

  private stepFor(plan: Map<string, Step | null>, type: string, path: string, key: string): Step | undefined {
    let step = plan.get(key);
    if (step === undefined) {
      step = this.compileStep(type, path, key);
      plan.set(key, step);
    }
    return step ?? undefined;
  }

  private compileStep(type: string, path: string, key: string): Step | null {
    const schema = tryGetDataType(type);
    if (!schema) {
      return null;
    }
    let elementName: string | undefined;
    let elementType: string | undefined;
    const direct = schema.elements[key];
    if (direct) {
      elementName = key;
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
          elementName = base;
          elementType = match.code;
          break;
        }
      }
    }
    if (!elementName || !elementType) {
      return null;
    }
    if (elementType.startsWith('http://hl7.org/fhirpath/System.')) {
      elementType = 'string';
    }
    const childPath = `${path}.${elementName}`;
    const rule =
      this.pathRules.get(childPath) ?? this.wildcardRules.get(path) ?? this.typeRules.get(elementType);
    const primitive = elementType.charAt(0) === elementType.charAt(0).toLowerCase();
    return { type: elementType, path: childPath, rule, primitive };
  }

  // ---- method implementations ----

  private hashIdentifierNode(value: unknown, step: Step, ctx: PolicyContext): unknown {
    if (value === null || typeof value !== 'object') {
      return undefined;
    }
    const identifier = value as Identifier;
    if (nationalIdKindOf(identifier)) {
      return undefined; // a person's national id outside Patient (e.g. a Practitioner's FNR): never stored
    }
    const walked = this.walkObject(value as Record<string, unknown>, 'Identifier', step.path, ctx) as
      Identifier | undefined;
    const system = identifier.system;
    const raw = identifier.value;
    if (
      typeof raw !== 'string' ||
      system === registryPseudonymSystem ||
      (system !== undefined && publicIdentifierSystems.has(system)) ||
      isHashedIdentifierValue(raw)
    ) {
      return walked;
    }
    const out: Record<string, unknown> = { ...(walked ?? {}), value: ctx.hashIdentifier(system, raw) };
    delete out._value;
    return out;
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

function keepMunicipalityExtensions(extensions: unknown): unknown[] | undefined {
  if (!Array.isArray(extensions)) {
    return undefined;
  }
  const kept = extensions.filter(
    (e) => e && typeof e === 'object' && municipalityExtensionUrls.has((e as { url?: string }).url ?? ''),
  );
  return kept.length > 0 ? kept : undefined;
}

function generaliseYearMonth(value: unknown): unknown {
  if (typeof value !== 'string') {
    return undefined;
  }
  return value.length > 7 ? value.slice(0, 7) : value;
}

/** Blanks every 11-digit run (also "DDMMYY NNNNN") whose check digits make it a possible national id. */
export function redactNationalIds(text: string): string {
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
