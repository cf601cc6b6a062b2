import type {
  Identifier,
  OperationOutcome,
  Parameters,
  ParametersParameter,
  Patient,
} from '@medplum/fhirtypes';
import { buildAuditEvent, type AuditSink } from '../audit/auditEvent';
import type { Principal } from '../auth/principal';
import { unitsOf, withUnitLabels } from '../auth/unitLabel';
import type { PersonLockService } from '../consent/personLock';
import type { ReservationRegister } from '../consent/register';
import { errors, FhirError, issue, operationOutcome } from '../fhir/outcomes';
import { parseReference } from '../fhir/reference';
import type { OperationHandler } from '../fhir/classify';
import { personKey } from '../ingest/exclude';
import { persistWrite } from '../ingest/persist';
import type { WriteEntry } from '../ingest/write';
import type { FhirStore } from '../store/FhirStore';
import { extractNationalIds } from './nationalId';
import {
  mergePseudonymousPatient,
  movedTo,
  pseudonymIdentifier,
  readPatientIfStored,
  resourcesReferencing,
} from './relink';
import type { IdentityVault, VaultPerson } from './vault/IdentityVault';

/**
 * `POST /fhir/Patient/$merge` (FHIR R5's Patient merge, on R4): how registry staff make two registered
 * persons one, the only way two persons are ever merged (DESIGN §4; a write naming two persons' ids gets
 * 409). Parameters:
 * - `source-patient` (valueReference `Patient/<id>`) or `source-patient-identifier` (valueIdentifier, a
 *   national id): the person who goes;
 * - `target-patient` or `target-patient-identifier`: the person who stays;
 * - `preview` (valueBoolean): say what would happen, change nothing.
 * `result-patient` is refused: the registry's Patient is pseudonymous, what it holds comes from the clinics.
 *
 * All or nothing: every resource that references the source moves to the target, the target Patient
 * keeps what it knows and gains what only the source knew, and the source Patient is deleted, in one
 * store transaction; then the vault gives the target the source's ids (the pseudonym follows the
 * best-ranked id), and the retired Patient's versions are physically erased (they carry a pseudonym no
 * vault entry names any more). It holds both persons' keys exclusively in the person lock, so no write
 * or reservation about either runs meanwhile. A reserved person cannot be merged (403, as a write about
 * them would be). Besides the request's own audit entry, an AuditEvent names both persons' pseudonyms,
 * so each can find the merge in their access log.
 */
export interface MergeDeps {
  vault: IdentityVault;
  store: FhirStore;
  register: ReservationRegister;
  locks: PersonLockService;
  audit: AuditSink;
  /** Production refuses synthetic national ids. */
  production: boolean;
}

type Side = 'source' | 'target';

export function mergeOperation(deps: MergeDeps): OperationHandler {
  return async (ctx, request) => {
    const body = request.body() as Parameters;
    if (body?.resourceType !== 'Parameters') {
      throw errors.badRequest('Patient/$merge takes a Parameters resource.', 'Parameters');
    }
    const parameters = body.parameter ?? [];
    if (parameters.some((p) => p.name === 'result-patient')) {
      throw errors.unprocessable([
        issue(
          'not-supported',
          'result-patient is not supported: the registry keeps a pseudonymous Patient whose content comes from the clinics. Leave it out; the target keeps what it holds and gains what only the source held.',
          'Parameters.parameter',
        ),
      ]);
    }
    const source = resolve(deps, parameters, 'source');
    const target = resolve(deps, parameters, 'target');
    if (source.patientId === target.patientId) {
      throw errors.unprocessable([
        issue(
          'business-rule',
          'source and target are the same person: there is nothing to merge.',
          'Parameters',
        ),
      ]);
    }
    const preview = parameters.find((p) => p.name === 'preview')?.valueBoolean === true;
    const keys = [source, target].flatMap((p) => [
      personKey.patient(p.patientId),
      personKey.pseudonym(p.pseudonym),
    ]);
    const release = await deps.locks.acquire(keys, 'exclusive');
    try {
      for (const [side, person] of [
        ['source', source],
        ['target', target],
      ] as const) {
        // A reservation or another merge may have come first while this request waited for the lock.
        const now = deps.vault.findByPatientId(person.patientId);
        if (now?.pseudonym !== person.pseudonym) {
          throw reservedOr409(deps, person.patientId, side);
        }
      }
      const result = preview
        ? await plan(deps, source, target)
        : await merge(deps, source, target, { actor: ctx.principal, requestId: ctx.requestId });
      return { status: 200, body: result, headers: {} };
    } finally {
      release();
    }
  };
}

interface Plan {
  moved: WriteEntry[];
  patient: Patient;
  person: VaultPerson;
}

/** The store transaction and the target as it will be, from a rehearsal of the vault merge. */
async function planMerge(deps: MergeDeps, source: VaultPerson, target: VaultPerson): Promise<Plan> {
  const { result } = deps.vault.rehearse(() => deps.vault.merge(source.patientId, target.patientId));
  if (!result) {
    throw new Error('the persons to merge left the vault while locked');
  }
  const { resources } = await resourcesReferencing(deps.store, source.patientId);
  const known = [
    await readPatientIfStored(deps.store, source.patientId),
    await readPatientIfStored(deps.store, target.patientId),
  ].filter((p): p is Patient => p !== undefined);
  // The target keeps what it holds, gains what only the source held, and stays visible to both units.
  const patient = withUnitLabels(
    mergePseudonymousPatient(known, {
      resourceType: 'Patient',
      id: target.patientId,
      identifier: [pseudonymIdentifier(result.person.pseudonym)],
    }),
    known.flatMap(unitsOf),
  );
  const moved = resources.map((resource): WriteEntry => ({
    method: 'PUT',
    resourceType: resource.resourceType,
    id: resource.id,
    ifMatch: resource.meta?.versionId,
    resource: movedTo(resource, source.patientId, target.patientId),
  }));
  return { moved, patient, person: result.person };
}

async function plan(deps: MergeDeps, source: VaultPerson, target: VaultPerson): Promise<Parameters> {
  const { moved, patient } = await planMerge(deps, source, target);
  return answer(
    `Preview, nothing was changed: ${moved.length} resource(s) would move from the source Patient to the target, and the source Patient would be retired.`,
    patient,
  );
}

async function merge(
  deps: MergeDeps,
  source: VaultPerson,
  target: VaultPerson,
  by: { actor: Principal; requestId: string },
): Promise<Parameters> {
  const { moved, patient, person } = await planMerge(deps, source, target);
  await persistWrite(deps.store, {
    transaction: true,
    entries: [
      ...moved,
      { method: 'PUT', resourceType: 'Patient', id: target.patientId, resource: patient },
      { method: 'DELETE', resourceType: 'Patient', id: source.patientId },
    ],
  });
  deps.vault.merge(source.patientId, target.patientId);
  await deps.audit.record(
    buildAuditEvent({
      principal: by.actor,
      interaction: 'operation',
      operation: '$merge',
      resources: [`Patient/${source.patientId}`, `Patient/${target.patientId}`],
      patients: [...new Set([source.pseudonym, target.pseudonym, person.pseudonym])],
      outcome: '0',
      requestId: by.requestId,
    }),
  );
  await deps.store.eraseResource('Patient', source.patientId);
  return answer(
    `The persons were merged: ${moved.length} resource(s) moved from the source Patient to the target, and the source Patient was retired.`,
    await deps.store.read<Patient>('Patient', target.patientId),
  );
}

function answer(text: string, patient: Patient): Parameters {
  const outcome: OperationOutcome = operationOutcome([
    issue('informational', text, undefined, 'information'),
  ]);
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'outcome', resource: outcome },
      { name: 'result', resource: patient },
    ],
  };
}

/** The person a side names, by reference or by national id; 403 for a reserved person, 404 for none. */
function resolve(deps: MergeDeps, parameters: ParametersParameter[], side: Side): VaultPerson {
  const named = parameters
    .map((p, index) => ({ p, index }))
    .filter(({ p }) => p.name === `${side}-patient` || p.name === `${side}-patient-identifier`);
  if (named.length !== 1) {
    throw errors.unprocessable([
      issue(
        'required',
        `Give the ${side} person once: ${side}-patient (valueReference "Patient/<id>") or ${side}-patient-identifier (valueIdentifier with a national id).`,
        'Parameters.parameter',
      ),
    ]);
  }
  const [{ p, index }] = named;
  const expression = `Parameters.parameter[${index}]`;
  const identifier: Identifier | undefined = p.valueIdentifier ?? p.valueReference?.identifier;
  if (p.valueReference?.reference !== undefined) {
    const parsed = parseReference(p.valueReference.reference);
    if (!parsed.ok || parsed.reference.kind !== 'literal' || parsed.reference.resourceType !== 'Patient') {
      throw errors.unprocessable([
        issue(
          'value',
          `${side}-patient must reference a Patient as "Patient/<id>".`,
          `${expression}.valueReference`,
        ),
      ]);
    }
    const patientId = parsed.reference.id;
    const person = deps.vault.findByPatientId(patientId);
    if (!person) {
      throw reservedOr404(deps, patientId, side);
    }
    return person;
  }
  if (identifier === undefined) {
    throw errors.unprocessable([
      issue('required', `${side}-patient needs a reference or a national id.`, expression),
    ]);
  }
  const found = extractNationalIds([identifier], `${expression}.valueIdentifier`, {
    production: deps.production,
  });
  if (found.length === 0) {
    throw errors.unprocessable([
      issue(
        'value',
        `${side}-patient-identifier must be a national id (fødselsnummer, D-number, felles hjelpenummer or H-number with its assigner).`,
        `${expression}.valueIdentifier`,
      ),
    ]);
  }
  const id = found[0].id;
  const person = deps.vault.find(id);
  if (
    deps.register.activeFor([deps.register.hashNationalId(id)]) ||
    (person && erased(deps, person.patientId))
  ) {
    throw reserved(side);
  }
  if (!person) {
    throw errors.notFound(`The ${side} person is not registered in NorPain.`);
  }
  return person;
}

function erased(deps: MergeDeps, patientId: string): boolean {
  return deps.register.wasErased('patient', patientId);
}

function reservedOr404(deps: MergeDeps, patientId: string, side: Side): FhirError {
  return erased(deps, patientId)
    ? reserved(side)
    : errors.notFound(`The ${side} Patient is not a Patient of the registry.`);
}

function reservedOr409(deps: MergeDeps, patientId: string, side: Side): FhirError {
  return erased(deps, patientId)
    ? reserved(side)
    : errors.conflict(
        `The ${side} person changed while the merge waited; nothing was changed. Send the merge again.`,
      );
}

function reserved(side: Side): FhirError {
  return new FhirError(
    403,
    operationOutcome([
      issue(
        'forbidden',
        `The ${side} person has reserved themselves against registration in NorPain; their data were erased and may not be merged. Nothing was changed.`,
        'Parameters.parameter',
      ),
    ]),
  );
}
