import { parseSearchRequest } from '@medplum/core';
import type { Identifier, Patient, Resource } from '@medplum/fhirtypes';
import { patientCompartmentMembers } from '../fhir/definitions';
import { isFhirError } from '../fhir/outcomes';
import { literalKeyOf } from '../fhir/reference';
import type { FhirStore } from '../store/FhirStore';
import { registryPseudonymSystem } from './pseudonym';
import type { RekeyChange } from './vault/IdentityVault';

/**
 * Store-side consequences of identity changes: moving a person's data to the surviving pseudonymous
 * Patient when aliases are linked, and replacing the pseudonym identifier when keys are rotated.
 * The resources to move are found through the FHIR Patient compartment definition (which search
 * parameters of which resource types point at a Patient).
 */

export function pseudonymIdentifier(pseudonym: string): Identifier {
  return { use: 'official', system: registryPseudonymSystem, value: pseudonym };
}

export interface MoveReport {
  /** Resources whose references were moved. */
  moved: number;
  /** Search parameters the store could not search (their resources, if any, were not moved). */
  unsearchable: string[];
}

/** The resources that reference a Patient, found through the Patient compartment's search parameters. */
export interface Referencing {
  /** Current versions, each once. */
  resources: Resource[];
  /** Search parameters the store could not search (their resources, if any, are not listed). */
  unsearchable: string[];
}

export async function resourcesReferencing(store: FhirStore, patientId: string): Promise<Referencing> {
  const found = new Map<string, Resource>();
  const unsearchable: string[] = [];
  for (const { type, params } of patientCompartmentMembers()) {
    for (const param of params) {
      let offset: number | undefined = 0;
      while (offset !== undefined) {
        const request = parseSearchRequest(`${type}?${param}=Patient/${patientId}&_count=200`);
        let page;
        try {
          page = await store.search({ ...request, offset });
        } catch (err) {
          if (isFhirError(err) && err.status === 400) {
            unsearchable.push(`${type}.${param}`);
            break;
          }
          throw err;
        }
        for (const resource of page.matches) {
          found.set(`${type}/${resource.id}`, resource);
        }
        offset = page.matches.length === 0 ? undefined : page.nextOffset;
      }
    }
  }
  return { resources: [...found.values()], unsearchable };
}

/** A resource as it is to be stored once its references to Patient/{from} point at Patient/{to}. */
export function movedTo(resource: Resource, from: string, to: string): Resource & { id: string } {
  return { ...replaceReferences(resource, `Patient/${from}`, `Patient/${to}`), id: resource.id as string };
}

/**
 * Moves everything that references Patient/{from} to Patient/{to} (a new version of each resource with
 * every such reference rewritten), then physically erases Patient/{from} with all its versions: they
 * carry the retired pseudonym, which no vault entry names any more, so nothing else could erase them.
 * Not `erasePatientCompartment(from)`: both stores count as the compartment every resource that referred
 * to the Patient in any version, which would erase the data just moved.
 */
export async function movePatientData(store: FhirStore, from: string, to: string): Promise<MoveReport> {
  const { resources, unsearchable } = await resourcesReferencing(store, from);
  for (const resource of resources) {
    await store.update(movedTo(resource, from, to), { ifMatch: resource.meta?.versionId });
  }
  await store.eraseResource('Patient', from);
  return { moved: resources.length, unsearchable };
}

/**
 * The pseudonymous Patient of a person as a write leaves it: the elements the incoming Patient carries
 * replace those known (the newer value wins); those it lacks (e.g. a second clinic sends no birth date)
 * are kept from what the store holds, `known` oldest first (retired Patients of merged aliases, then the
 * person's own). The identifier is always the incoming one (the current pseudonym); version and
 * timestamps are the store's to set.
 */
export function mergePseudonymousPatient(known: readonly Patient[], incoming: Patient): Patient {
  let merged: Patient = { resourceType: 'Patient' };
  for (const patient of [...known, incoming]) {
    merged = { ...merged, ...patient };
  }
  const { meta, ...rest } = merged;
  const { versionId: _version, lastUpdated: _updated, ...kept } = meta ?? {};
  return {
    ...rest,
    id: incoming.id,
    identifier: incoming.identifier,
    ...(Object.keys(kept).length > 0 ? { meta: kept } : {}),
  };
}

/** A deep copy with every `reference` to `from` ("Type/id", any version of it) set to `to`. */
function replaceReferences<T>(value: T, from: string, to: string): T {
  if (Array.isArray(value)) {
    return value.map((item) => replaceReferences(item, from, to)) as T;
  }
  if (value === null || typeof value !== 'object') {
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    out[key] =
      key === 'reference' && typeof child === 'string' && literalKeyOf(child) === from
        ? to
        : replaceReferences(child, from, to);
  }
  return out as T;
}

/** The store side of a re-key: the Patient's pseudonym identifier becomes the new one. */
export async function applyRekeyToStore(store: FhirStore, change: RekeyChange): Promise<void> {
  let patient: Patient;
  try {
    patient = await store.read<Patient>('Patient', change.patientId);
  } catch (err) {
    if (isFhirError(err) && (err.status === 404 || err.status === 410)) {
      return; // the vault knows the person, the store holds nothing (yet): nothing to rewrite
    }
    throw err;
  }
  const identifier = [
    pseudonymIdentifier(change.pseudonym),
    ...(patient.identifier ?? []).filter((i) => i.system !== registryPseudonymSystem),
  ];
  await store.update({ ...patient, id: change.patientId, identifier }, { ifMatch: patient.meta?.versionId });
}

/** The stored Patient with this id, or undefined when there is none (never stored, or erased). */
export async function readPatientIfStored(store: FhirStore, id: string): Promise<Patient | undefined> {
  try {
    return await store.read<Patient>('Patient', id);
  } catch (err) {
    if (isFhirError(err) && (err.status === 404 || err.status === 410)) {
      return undefined;
    }
    throw err;
  }
}
