import { OperationOutcomeError, validateTypedValue } from '@medplum/core';
import type { OperationOutcomeIssue, QuestionnaireResponse, Resource } from '@medplum/fhirtypes';
import { issue } from '../../fhir/outcomes';
import { itemRuleIssues, itemsConform } from './response-items';

/**
 * @medplum/core's structural validation (cardinality, types, primitive formats, unknown properties,
 * invariants) of a resource against a type in its registry: the base resource type or a pre-parsed
 * profile. Returns its issues of every severity; never throws for invalid content.
 *
 * For a QuestionnaireResponse whose item tree is in the common shape (`itemsConform`), @medplum/core
 * validates the response without its items and the compiled item check stands in for the rest, which
 * is ~60 times faster on a full response. Any other item tree is validated by @medplum/core as a
 * whole, so every rejection carries its messages and expressions. The item rules it does not enforce
 * (one value per answer, qrs-2) are added on both paths.
 */
export function structureIssues(
  resource: Resource,
  type: string = resource.resourceType,
  options: { fastItems?: boolean } = {},
): OperationOutcomeIssue[] {
  if (resource.resourceType !== 'QuestionnaireResponse') {
    return medplumIssues(resource, type);
  }
  const { item, ...withoutItems } = resource as QuestionnaireResponse;
  const fast = options.fastItems !== false && (item === undefined || itemsConform(item));
  return [...medplumIssues(fast ? (withoutItems as Resource) : resource, type), ...itemRuleIssues(item)];
}

function medplumIssues(resource: Resource, type: string): OperationOutcomeIssue[] {
  try {
    return validateTypedValue({ type, value: resource });
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return err.outcome.issue ?? [];
    }
    // A malformed primitive extension makes the validator throw instead of reporting (`"_family": true`:
    // "Primitive extension must be an object"; `"_gender": ["x"]`: a TypeError). Anything else it throws
    // is not the client's doing: a 500, its message unseen.
    const misplaced = malformedPrimitiveExtension(resource, resource.resourceType);
    if (misplaced === undefined) {
      throw err;
    }
    return [
      issue(
        'structure',
        'An element whose name begins with "_" holds the id and extensions of the primitive value of the same name: an object with only id and extension, or for a repeating element an array of such objects and nulls.',
        misplaced,
      ),
    ];
  }
}

/** Where a `_name` element is not a primitive extension as FHIR JSON has it (R4 §2.6.2.7), or undefined. */
function malformedPrimitiveExtension(value: unknown, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = malformedPrimitiveExtension(item, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (value === null || typeof value !== 'object') {
    return undefined;
  }
  const element = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(element)) {
    if (key.length > 1 && key.startsWith('_') && !isPrimitiveExtensionOf(element[key.slice(1)], child)) {
      return `${path}.${key}`;
    }
    const found = malformedPrimitiveExtension(child, `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

function isPrimitiveExtensionOf(primitive: unknown, extension: unknown): boolean {
  const repeating = Array.isArray(primitive) || (primitive === undefined && Array.isArray(extension));
  return repeating
    ? Array.isArray(extension) && extension.every((item) => item === null || isIdAndExtensions(item))
    : isIdAndExtensions(extension);
}

function isIdAndExtensions(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.keys(value).every((key) => key === 'id' || key === 'extension')
  );
}
