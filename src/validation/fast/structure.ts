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
    // Some malformed content makes the validator throw instead of reporting (e.g. `"_linkId": true`:
    // "Primitive extension must be an object"). It is still the client's content that is wrong.
    return [
      issue(
        'structure',
        `The resource is malformed: ${err instanceof Error ? err.message : 'not valid FHIR JSON'}`,
        resource.resourceType,
      ),
    ];
  }
}
