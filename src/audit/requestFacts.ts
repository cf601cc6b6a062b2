import type { Bundle, Reference, Resource } from '@medplum/fhirtypes';
import { parseReference } from '../fhir/reference';
import type { AuditInteraction } from './auditEvent';
import { AUDIT_SYSTEMS } from './auditEvent';

/**
 * Derives an audit entry's "what" from an HTTP request and what it returned or wrote, so the HTTP layer
 * can audit every request in one place (success or failure) without knowing AuditEvent's shape.
 */

/** The FHIR interaction of a request under /fhir, from its method and decoded path segments. */
export function interactionOf(
  method: string,
  segments: readonly string[],
  bundleType?: string,
): { interaction: AuditInteraction; operation?: string } {
  const operation = segments.find((s) => s.startsWith('$'));
  if (operation !== undefined) {
    return { interaction: 'operation', operation };
  }
  const [type, second, third, fourth] = segments;
  if (type === undefined) {
    return {
      interaction: method === 'GET' ? 'search-system' : bundleType === 'batch' ? 'batch' : 'transaction',
    };
  }
  if (type === 'metadata') return { interaction: 'capabilities' };
  if (type === '_history') return { interaction: 'history-system' };
  if (second === undefined) {
    const byMethod: Record<string, AuditInteraction> = {
      GET: 'search-type',
      POST: 'create',
      PUT: 'update',
      PATCH: 'patch',
      DELETE: 'delete',
    };
    return { interaction: byMethod[method] ?? 'search-type' };
  }
  if (second === '_search') return { interaction: 'search-type' };
  if (second === '_history') return { interaction: 'history-type' };
  if (third === '_history') return { interaction: fourth === undefined ? 'history-instance' : 'vread' };
  const byMethod: Record<string, AuditInteraction> = { PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
  return { interaction: byMethod[method] ?? 'read' };
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
        const location = entry.response?.location?.split('/_history')[0];
        if (location !== undefined && /^[A-Za-z]+\/[^/]+$/.test(location)) {
          resources.add(location);
          if (location.startsWith('Patient/')) patientIds.add(location.slice('Patient/'.length));
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
