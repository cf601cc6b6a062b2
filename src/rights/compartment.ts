import { parseSearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { patientCompartmentMembers } from '../fhir/definitions';
import { isFhirError } from '../fhir/outcomes';
import type { FhirStore } from '../store/FhirStore';

/**
 * A person's data in the clinical store: the pseudonymous Patient and every resource of its compartment,
 * found through the FHIR R4 Patient CompartmentDefinition (which search parameters of which types point
 * at a Patient), so it works on any store of the contract.
 */

const PAGE = 200;

export async function compartmentResources(store: FhirStore, patientId: string): Promise<Resource[]> {
  const found = new Map<string, Resource>();
  try {
    const patient = await store.read('Patient', patientId);
    found.set(`Patient/${patientId}`, patient);
  } catch (err) {
    if (!isFhirError(err) || (err.status !== 404 && err.status !== 410)) {
      throw err;
    }
  }
  for (const { type, params } of patientCompartmentMembers()) {
    for (const param of params) {
      let offset: number | undefined = 0;
      while (offset !== undefined) {
        let page;
        try {
          page = await store.search(
            parseSearchRequest(type, {
              [param]: `Patient/${patientId}`,
              _count: String(PAGE),
              _offset: String(offset),
            }),
          );
        } catch (err) {
          if (isFhirError(err) && err.status === 400) {
            break; // a parameter this store cannot search: its resources are found through the others
          }
          throw err;
        }
        for (const resource of page.matches) {
          found.set(`${resource.resourceType}/${resource.id}`, resource);
        }
        offset = page.nextOffset;
      }
    }
  }
  return [...found.values()];
}
