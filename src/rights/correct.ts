import { randomUUID } from 'node:crypto';
import type { Parameters, Provenance, Reference, Resource } from '@medplum/fhirtypes';
import { literalKey, literalOf, referenceSites } from '../fhir/reference';
import { errors } from '../fhir/outcomes';
import type { OperationHandler } from '../fhir/classify';

/**
 * Correction (retting, DESIGN §1 and reference §4): `POST /fhir/<Type>/<id>/$correct` by registry staff
 * with a Parameters of `resource` (the corrected resource) and `reason` (valueString, why). It is one
 * transaction through the whole write path (validation, exclusion, pseudonymisation): the update, made
 * against the version read (If-Match), and a Provenance with
 * - target: the corrected resource and the person's Patient (so the Provenance is in the person's
 *   compartment: the person sees it in $everything, and a reservation erases it with the rest);
 * - entity (role revision): the version that was corrected;
 * - reason.text: the reason given; activity UPDATE; recorded: now.
 * The answer is a Parameters with the corrected `resource` and the `provenance`.
 *
 * A pseudonymous Patient cannot be corrected this way: a Patient write must carry the national id, which
 * staff do not have; Patient corrections come from the clinic's EPR.
 */
export function correctOperation(): OperationHandler {
  return async (ctx, request) => {
    const { what } = request;
    // Its row offers it at instance level only (404 elsewhere); this gives the call its type and id.
    if (what.level !== 'instance') {
      return undefined;
    }
    const { type, id } = what;
    const body = request.body() as Parameters;
    const resource = body.parameter?.find((p) => p.name === 'resource')?.resource;
    const given = body.parameter?.find((p) => p.name === 'reason')?.valueString as unknown;
    const reason = typeof given === 'string' ? given.trim() : undefined;
    if (body.resourceType !== 'Parameters' || !resource || !reason) {
      throw errors.badRequest(
        '$correct takes a Parameters with "resource" (the corrected resource) and "reason" (valueString).',
        'Parameters.parameter',
      );
    }
    if (resource.resourceType !== type || (resource.id !== undefined && resource.id !== id)) {
      throw errors.badRequest(
        'The corrected resource must have the type and id of the URL.',
        'Parameters.parameter.resource',
      );
    }
    const current = await ctx.store.read(type, id);
    const version = current.meta?.versionId as string;
    const patients = patientReferences(type, id, current);
    const provenance: Provenance = {
      resourceType: 'Provenance',
      target: [{ reference: `${type}/${id}` }, ...patients],
      entity: [{ role: 'revision', what: { reference: `${type}/${id}/_history/${version}` } }],
      recorded: new Date().toISOString(),
      activity: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'UPDATE' }],
      },
      reason: [{ text: reason }],
      agent: [
        {
          type: {
            coding: [
              { system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' },
            ],
          },
          who: {
            identifier: {
              system: 'https://norpain.no/fhir/NamingSystem/client-id',
              value: ctx.principal.clientId,
            },
          },
        },
      ],
    };
    const outcome = await ctx.ingest.run(
      {
        transaction: true,
        entries: [
          {
            method: 'PUT',
            resourceType: type,
            id,
            ifMatch: version,
            resource: { ...resource, id },
            fullUrl: `urn:uuid:${randomUUID()}`,
          },
          {
            method: 'POST',
            resourceType: 'Provenance',
            resource: provenance,
            fullUrl: `urn:uuid:${randomUUID()}`,
          },
        ],
      },
      { principal: ctx.principal, requestId: ctx.requestId, base: ctx.base, intents: ctx.intents },
    );
    if (outcome.kind !== 'transaction') {
      throw new Error('a correction is a transaction');
    }
    const stored = literalOf(outcome.bundle.entry?.[1]?.response?.location ?? '');
    if (stored?.resourceType !== 'Provenance') {
      // The correction has been committed; what is missing is the store's, not the client's (a 500).
      throw new Error("a committed correction has no Provenance location in the store's answer");
    }
    const parameters: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: await ctx.store.read(type, id) },
        { name: 'provenance', resource: await ctx.store.read('Provenance', stored.id) },
      ],
    };
    return { status: 200, body: parameters, headers: {} };
  };
}

/** The Patients a stored resource points at (the Patient itself when it is one). */
function patientReferences(type: string, id: string, resource: Resource): Reference[] {
  const found = new Set<string>();
  if (type === 'Patient') {
    found.add(`Patient/${id}`);
  }
  for (const site of referenceSites(resource, type)) {
    const literal = literalOf(site.node.reference as string);
    if (literal?.resourceType === 'Patient') {
      found.add(literalKey(literal));
    }
  }
  found.delete(`${type}/${id}`);
  return [...found].map((reference) => ({ reference }));
}
