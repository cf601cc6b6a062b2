import { tryGetDataType } from '@medplum/core';
import type { CodeableConcept, Coding, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../fhir/definitions';
import { errors, issue } from '../fhir/outcomes';
import { structureIssues } from './fast/structure';
import { expandValueSet, expansionContains, type Expansion } from './valuesets';

/**
 * Validation of a resource against the FHIR R4 base definitions: @medplum/core's validator
 * (cardinality, types, primitive formats, unknown properties, invariants; with a compiled fast path for
 * QuestionnaireResponse items, see fast/structure.ts) plus the required-binding checks that library skips. Profiles and Questionnaires are checked by later stages.
 */

/** Throws a 400 FhirError when the body's resourceType is not the type the request addresses. */
export function checkResourceType(
  resource: unknown,
  expectedType: string,
  expression = 'resourceType',
): void {
  const actual = (resource as { resourceType?: unknown } | null)?.resourceType;
  if (typeof actual !== 'string') {
    throw errors.badRequest('The body is not a FHIR resource: it has no resourceType.', expression);
  }
  if (actual !== expectedType) {
    throw errors.badRequest(
      `The body's resourceType ${actual} does not match the resource type ${expectedType} in the URL.`,
      expression,
    );
  }
}

/** The errors found in a resource (empty when valid). Never throws for invalid content. */
export function baseValidationIssues(resource: Resource): OperationOutcomeIssue[] {
  return baseIssues(resource).filter((found) => found.severity === 'error' || found.severity === 'fatal');
}

/** Every issue found in a resource, with the validator's severity (warnings too, for `$validate`). */
export function baseIssues(resource: Resource): OperationOutcomeIssue[] {
  loadFhirDefinitions();
  const issues: OperationOutcomeIssue[] = [];
  if (tryGetDataType(resource.resourceType)?.kind !== 'resource') {
    return [
      issue(
        'not-supported',
        `${String(resource.resourceType)} is not a FHIR R4 resource type.`,
        'resourceType',
      ),
    ];
  }
  for (const found of structureIssues(resource)) {
    issues.push(
      issue(
        found.code,
        found.details?.text ?? found.diagnostics ?? 'Invalid element',
        found.expression,
        found.severity,
      ),
    );
  }
  checkRequiredBindings(resource, resource.resourceType, resource.resourceType, issues);
  return issues;
}

/** How to check one property of a type: its element type, and the required ValueSet if it has one. */
interface PropertyRule {
  type: string;
  valueSet?: string;
}

const rulesByType = new Map<string, Map<string, PropertyRule> | undefined>();

/** The property rules of a type, by JSON property name (choice elements expanded: valueCoding, …). */
function propertyRules(typeName: string): Map<string, PropertyRule> | undefined {
  if (rulesByType.has(typeName)) {
    return rulesByType.get(typeName);
  }
  const schema = tryGetDataType(typeName);
  let rules: Map<string, PropertyRule> | undefined;
  if (schema) {
    rules = new Map();
    for (const [key, element] of Object.entries(schema.elements)) {
      const binding = element.binding;
      const valueSet = binding?.strength === 'required' ? binding.valueSet : undefined;
      if (key.endsWith('[x]')) {
        for (const t of element.type) {
          rules.set(key.slice(0, -3) + capitalise(t.code), { type: t.code, valueSet });
        }
      } else if (element.type[0]) {
        rules.set(key, { type: element.type[0].code, valueSet });
      }
    }
  }
  rulesByType.set(typeName, rules);
  return rules;
}

/** Walks a value along its type's schema and reports every code that is not in its required ValueSet. */
function checkRequiredBindings(
  value: unknown,
  typeName: string,
  path: string,
  issues: OperationOutcomeIssue[],
): void {
  const rules = propertyRules(typeName);
  if (!rules || typeof value !== 'object' || value === null) {
    return;
  }
  for (const [property, found] of Object.entries(value as Record<string, unknown>)) {
    const rule = rules.get(property);
    if (!rule || found === undefined) {
      continue; // unknown properties are reported by validateResource
    }
    const items: unknown[] = Array.isArray(found) ? found : [found];
    items.forEach((item, index) => {
      const itemPath = `${path}.${property}` + (Array.isArray(found) ? `[${index}]` : '');
      const expansion = rule.valueSet ? expandValueSet(rule.valueSet) : undefined;
      if (rule.valueSet && expansion) {
        checkCoded(item, rule.type, itemPath, rule.valueSet, expansion, issues);
      }
      const nestedType = rule.type === 'Resource' ? (item as Resource | null)?.resourceType : rule.type;
      if (nestedType && !isPrimitive(nestedType)) {
        checkRequiredBindings(item, nestedType, itemPath, issues);
      }
    });
  }
}

function checkCoded(
  value: unknown,
  type: string,
  path: string,
  valueSet: string,
  expansion: Expansion,
  issues: OperationOutcomeIssue[],
): void {
  const url = valueSet.split('|')[0];
  const allowed = (): string =>
    expansion.codes.size <= 25 ? ` Allowed codes: ${[...expansion.codes].join(', ')}.` : '';
  if (type === 'code' && typeof value === 'string') {
    if (!expansionContains(expansion, value)) {
      issues.push(
        issue(
          'code-invalid',
          `The code '${value}' is not in the required value set ${url}.${allowed()}`,
          path,
        ),
      );
    }
  } else if (type === 'Coding') {
    const coding = value as Coding;
    if (coding.code !== undefined && !expansionContains(expansion, coding.code, coding.system)) {
      issues.push(
        issue('code-invalid', `The coding is not in the required value set ${url}.${allowed()}`, path),
      );
    }
  } else if (type === 'CodeableConcept') {
    const codings = (value as CodeableConcept).coding ?? [];
    if (!codings.some((c) => c.code !== undefined && expansionContains(expansion, c.code, c.system))) {
      issues.push(
        issue(
          'code-invalid',
          `At least one coding must come from the required value set ${url}.${allowed()}`,
          path,
        ),
      );
    }
  }
}

function isPrimitive(type: string): boolean {
  // FHIR primitive type names start in lower case (string, code, dateTime, xhtml); complex ones do not.
  return type.charAt(0) === type.charAt(0).toLowerCase();
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
