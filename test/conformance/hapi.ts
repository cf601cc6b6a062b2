import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';

/**
 * HAPI FHIR JPA's own validator (FhirInstanceValidator, the HL7 validator's engine) through its
 * type-level `$validate`: it resolves Questionnaires, ValueSets and CodeSystems from what HAPI stores.
 */
export class HapiValidator {
  constructor(private readonly base: string) {}

  /** Stores conformance resources under their ids (PUT, so a second run finds them unchanged). */
  async load(resources: readonly Resource[]): Promise<void> {
    for (const resource of resources) {
      const reply = await fetch(`${this.base}/${resource.resourceType}/${resource.id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(resource),
      });
      if (!reply.ok) {
        throw new Error(
          `HAPI refused ${resource.resourceType}/${resource.id}: ${reply.status} ${await reply.text()}`,
        );
      }
    }
  }

  async validate(resource: Resource): Promise<OperationOutcomeIssue[]> {
    const reply = await fetch(`${this.base}/${resource.resourceType}/$validate`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      body: JSON.stringify(resource),
    });
    // HAPI answers an invalid resource with 412, one its parser refuses (an unknown status code) with 400,
    // and a validation that threw (an enableWhen comparing answers of incompatible types) with 422: each
    // carries the OperationOutcome, its verdict.
    if (![200, 400, 412, 422].includes(reply.status)) {
      throw new Error(`HAPI $validate answered ${reply.status}: ${await reply.text()}`);
    }
    return ((await reply.json()) as OperationOutcome).issue ?? [];
  }
}
