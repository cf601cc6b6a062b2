import type { Bundle, Reference, Resource } from '@medplum/fhirtypes';
import { literalKey, literalOf, parseReference } from '../fhir/reference';
import type { AuditInteraction } from './auditEvent';
import { AUDIT_SYSTEMS } from './auditEvent';
import type { FhirInteraction } from '../fhir/classify';

/**
 * Derives an audit entry's "what" from an HTTP request and what it returned or wrote, so the HTTP layer
 * can audit every request in one place (success or failure) without knowing AuditEvent's shape.
 */

/** The audit's name (FHIR restful-interaction code) of a classified request (src/fhir/classify.ts). */
export function interactionOf(
  what: FhirInteraction | undefined,
  bundleType?: string,
): { interaction: AuditInteraction; operation?: string } {
  if (what === undefined) {
    return { interaction: 'operation', operation: 'unknown' };
  }
  switch (what.kind) {
    case 'unknown':
      return { interaction: 'operation', operation: 'unknown' };
    case 'operation':
      return { interaction: 'operation', operation: what.operation.name };
    case 'bundle':
      return { interaction: bundleType === 'batch' ? 'batch' : 'transaction' };
    case 'search':
      return { interaction: 'search-type' };
    case 'conditional-update':
      return { interaction: 'update' };
    case 'history':
      return {
        interaction:
          what.type === undefined
            ? 'history-system'
            : what.id === undefined
              ? 'history-type'
              : 'history-instance',
      };
    default:
      return { interaction: what.kind };
  }
}

export interface Touched {
  /** "Type/id" of every resource returned or written. */
  resources: string[];
  /** Logical ids of the Patients these resources concern; map them to registry pseudonyms through the
   * vault (`findByPatientId`, which reveals no national id). */
  patientIds: string[];
  /** Registry pseudonyms found directly on Patient resources. */
  pseudonyms: string[];
}

/** Which resources, and which persons, a response body or a written resource concerns. Bundles
 * (search, history, transaction responses) are unpacked, including entry.response.location. */
export function touchedBy(items: readonly (Resource | undefined)[]): Touched {
  const resources = new Set<string>();
  const patientIds = new Set<string>();
  const pseudonyms = new Set<string>();
  const visit = (resource: Resource | undefined): void => {
    if (resource === undefined || resource.resourceType === 'OperationOutcome') {
      return;
    }
    if (resource.resourceType === 'Bundle') {
      for (const entry of (resource as Bundle).entry ?? []) {
        visit(entry.resource);
        const location = entry.response?.location;
        const written = location === undefined ? undefined : literalOf(location);
        if (written !== undefined) {
          resources.add(literalKey(written));
          if (written.resourceType === 'Patient') patientIds.add(written.id);
        }
      }
      return;
    }
    if (resource.id !== undefined) {
      resources.add(`${resource.resourceType}/${resource.id}`);
    }
    if (resource.resourceType === 'Patient') {
      if (resource.id !== undefined) patientIds.add(resource.id);
      for (const identifier of resource.identifier ?? []) {
        if (identifier.system === AUDIT_SYSTEMS.registryPseudonym && identifier.value !== undefined) {
          pseudonyms.add(identifier.value);
        }
      }
      return;
    }
    for (const reference of subjectReferences(resource)) {
      const parsed = parseReference(reference.reference ?? '');
      const target = parsed.ok ? parsed.reference : undefined;
      if (target?.kind === 'literal' && target.resourceType === 'Patient') patientIds.add(target.id);
    }
  };
  items.forEach(visit);
  return { resources: [...resources], patientIds: [...patientIds], pseudonyms: [...pseudonyms] };
}

/** The elements by which the registry's resources point at their person (EpisodeOfCare.patient,
 * Encounter/Condition/Procedure/QuestionnaireResponse.subject, Consent.patient, Task.for). */
function subjectReferences(resource: Resource): Reference[] {
  const r = resource as { subject?: Reference; patient?: Reference; for?: Reference };
  return [r.subject, r.patient, r.for].filter((x): x is Reference => x !== undefined);
}
