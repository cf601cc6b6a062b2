import type {
  Bundle,
  CodeableConcept,
  Consent,
  Extension,
  Parameters,
  ParametersParameter,
} from '@medplum/fhirtypes';
import { decideReservation } from '../auth/matrix';
import { auditPseudonymsOf } from '../auth/person';
import type { Principal } from '../auth/principal';
import type { FhirResponse } from '../fhir/http';
import type { InteractionContext } from '../fhir/interactions';
import { errors, type FhirError, isFhirError, issue } from '../fhir/outcomes';
import type { TypeHandler } from '../fhir/classify';
import {
  invalidNationalId,
  nationalIdKindOf,
  parseNationalIdValue,
  type NationalId,
} from '../identity/nationalId';
import type { Pseudonymiser } from '../identity/pseudonym';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import { validateAgainstProfile } from '../validation/profiles';
import type {
  ReservationChannel,
  ReservationRecord,
  ReservationRegister,
  ReservationScope,
} from './register';
import type { ReservationReceipt, ReservationService } from './reservation';

/**
 * The reservation endpoint (DESIGN §6):
 *
 * - `POST /fhir/Consent` with the NorPain reservation profile. `status = active` reserves (201 the first
 *   time, 200 when the person was already reserved; the erasure runs again either way); `status =
 *   inactive` withdraws (200; 404 when there is no active reservation). Who may do which is one rule,
 *   decideReservation in src/auth/matrix.ts: the portal for the person in its token, registry staff (who
 *   say how the reservation reached them with the `reservation-channel` extension, `letter` or `e-mail`),
 *   and a clinic only reserving a person it registers; only the person and staff withdraw. Placing and
 *   withdrawing are audited under the person's pseudonyms, so both show in the person's access log.
 *   The answer is a `Parameters` holding no identifier: `reservation` (the Consent as recorded: no
 *   patient, with its channel), and for a reservation the erasure receipt — `erased` (one part per
 *   resource type: `type`, `count`), `versionsErased`, `residual` (resources of the person a search of
 *   the store still finds; always 0, else the request fails with 503), `identityDeleted`,
 *   `followUpsCancelled`. `Location` names `Consent/<reservation id>`.
 * - `GET /fhir/Consent?patient.identifier=system|value` (staff), or `POST /fhir/Consent/_search` with
 *   it in the form, as any search: the person's reservations, the id hashed on the way in; never a
 *   listing, and never with an identifier.
 * - `GET /fhir/Consent/<id>` (staff): one reservation by its id.
 * Every other interaction on Consent (an update, a delete, history) is refused with 405.
 *
 * The Consent is never stored in the clinical store (any other Consent write is refused by the
 * exclusion stage).
 */
const CHANNEL_EXTENSION = 'https://norpain.no/fhir/StructureDefinition/reservation-channel';
const WITHDRAWN_EXTENSION = 'https://norpain.no/fhir/StructureDefinition/reservation-withdrawn';
const CONSENT_SCOPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/consentscope';

export interface ReservationHttpDeps {
  service: ReservationService;
  register: ReservationRegister;
  production: boolean;
  /** Whether a clinic registers the person (their Patient), and the pseudonyms of their access log. */
  vault: IdentityVault;
  pseudonymiser: Pseudonymiser;
}

export function reservationOperation(deps: ReservationHttpDeps): TypeHandler {
  return async (ctx, { what, params, body }) => {
    switch (what.kind) {
      case 'create':
        return submit(deps, ctx, body());
      case 'search':
        return search(deps, ctx, params);
      case 'read':
        return read(deps, ctx, what.id);
    }
    throw errors.methodNotAllowed(
      'Reservations are registered with POST /fhir/Consent (status active to reserve, inactive to withdraw) and looked up with GET /fhir/Consent?patient.identifier=system|value.',
      ['GET', 'POST'],
    );
  };
}

async function submit(
  deps: ReservationHttpDeps,
  ctx: InteractionContext,
  body: unknown,
): Promise<FhirResponse> {
  const consent = body as Consent;
  if (consent.resourceType !== 'Consent') {
    throw errors.badRequest('POST /fhir/Consent takes a Consent resource.', 'resourceType');
  }
  const channel = channelOf(ctx.principal, consent);
  validateAgainstProfile(consent);
  const id = nationalIdOf(consent, deps.production);
  const action = consent.status === 'inactive' ? 'withdraw' : 'reserve';
  const decision = await decideReservation(ctx.principal, action, {
    isCaller: () => samePerson(ctx.principal.pid, id),
    registeredAtCallersUnit: () => registeredInView(deps.vault, ctx, id),
  });
  if (!decision.allowed) {
    throw errors.forbidden(decision.reason);
  }
  // Before the reservation erases the vault entry: the person finds both in their own access log.
  const auditPersons = auditPseudonymsOf(deps.vault, deps.pseudonymiser, id);
  if (action === 'withdraw') {
    const record = await deps.service.withdraw(id, channel);
    if (!record) {
      throw errors.notFound('The person has no active reservation to withdraw.');
    }
    return {
      status: 200,
      body: parameters(record),
      headers: { Location: `${ctx.base}/Consent/${record.id}` },
      auditPersons,
    };
  }
  const { record, created, receipt } = await deps.service.reserve(
    { id, scope: scopeOf(consent), channel, reservedAt: consent.dateTime as string },
    { actor: ctx.principal.clientId, requestId: ctx.requestId },
  );
  return {
    status: created ? 201 : 200,
    body: parameters(record, receipt),
    headers: { Location: `${ctx.base}/Consent/${record.id}` },
    auditPersons,
  };
}

/**
 * Whether the person's Patient is in the caller's view (for a clinic: labelled with its unit), or was
 * until it was deleted (the view answers 410 only to who could see it).
 */
async function registeredInView(
  vault: IdentityVault,
  ctx: InteractionContext,
  id: NationalId,
): Promise<boolean> {
  const person = vault.find(id);
  if (person === undefined) {
    return false;
  }
  try {
    await ctx.store.read('Patient', person.patientId);
    return true;
  } catch (err) {
    if (isFhirError(err) && (err.status === 404 || err.status === 410)) {
      return err.status === 410;
    }
    throw err;
  }
}

async function search(
  deps: ReservationHttpDeps,
  ctx: InteractionContext,
  params: URLSearchParams,
): Promise<FhirResponse> {
  requireStaff(ctx.principal);
  const values: string[] = [];
  for (const [name, value] of params) {
    if (name === 'patient.identifier' || name === 'patient:identifier') {
      values.push(value);
    } else if (!['_format', '_pretty'].includes(name)) {
      throw lookupOnly(name);
    }
  }
  if (values.length !== 1) {
    throw lookupOnly(undefined);
  }
  const value = values[0];
  const bar = value.indexOf('|');
  const identifier = { system: bar < 0 ? undefined : value.slice(0, bar), value: value.slice(bar + 1) };
  const kind = nationalIdKindOf(identifier);
  if (kind === undefined || kind === 'hnr') {
    throw errors.badRequest(
      'patient.identifier must be system|value with the OID system of a fødselsnummer, D-number or felles hjelpenummer.',
      'patient.identifier',
    );
  }
  const parsed = parseNationalIdValue(kind, identifier.value, { production: deps.production });
  if (!parsed.ok) {
    throw invalidNationalId(kind, parsed.problem, 'patient.identifier');
  }
  const records = deps.register.lookup(deps.register.hashNationalId(parsed.id));
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: records.length,
    link: [{ relation: 'self', url: `${ctx.base}/Consent` }],
    entry: records.map((record) => ({
      fullUrl: `${ctx.base}/Consent/${record.id}`,
      resource: asConsent(record),
      search: { mode: 'match' },
    })),
  };
  return { status: 200, body: bundle, headers: {} };
}

async function read(deps: ReservationHttpDeps, ctx: InteractionContext, id: string): Promise<FhirResponse> {
  requireStaff(ctx.principal);
  const record = deps.register.read(id);
  if (!record) {
    throw errors.notFound('No reservation has this id.');
  }
  return { status: 200, body: asConsent(record), headers: {} };
}

function requireStaff(principal: Principal): void {
  if (principal.role !== 'registry-admin') {
    throw errors.forbidden('Only registry staff may look up reservations.');
  }
}

function lookupOnly(name: string | undefined): FhirError {
  return errors.badRequest(
    `Reservations are looked up by one national id only (GET /fhir/Consent?patient.identifier=system|value) and never listed${name ? `; '${name}' is not supported` : ''}.`,
    name,
  );
}

/** Clinic and portal tokens are their channel; staff say whether the reservation came by letter or e-mail. */
function channelOf(principal: Principal, consent: Consent): ReservationChannel {
  const stated = consent.extension?.find((e) => e.url === CHANNEL_EXTENSION)?.valueCode;
  switch (principal.role) {
    case 'clinic':
    case 'portal':
      if (stated !== undefined && stated !== principal.role) {
        throw errors.unprocessable([
          issue(
            'value',
            `A ${principal.role} token registers through the ${principal.role} channel, not '${stated}'.`,
            'Consent.extension',
          ),
        ]);
      }
      return principal.role;
    case 'registry-admin':
      if (stated !== 'letter' && stated !== 'e-mail') {
        throw errors.unprocessable([
          issue(
            'required',
            `Registry staff must say how the reservation reached them: an extension ${CHANNEL_EXTENSION} with valueCode 'letter' or 'e-mail'.`,
            'Consent.extension',
          ),
        ]);
      }
      return stated;
    default:
      throw errors.forbidden('Reservations are registered by clinics, the portal or registry staff.');
  }
}

function nationalIdOf(consent: Consent, production: boolean): NationalId {
  const identifier = consent.patient?.identifier;
  const kind = identifier ? nationalIdKindOf(identifier) : undefined;
  if (!identifier?.value || kind === undefined || kind === 'hnr') {
    throw errors.unprocessable([
      issue(
        'required',
        'The person must be identified by a national id in Consent.patient.identifier.',
        'Consent.patient.identifier',
      ),
    ]);
  }
  const parsed = parseNationalIdValue(kind, identifier.value, { production });
  if (!parsed.ok) {
    throw invalidNationalId(kind, parsed.problem, 'Consent.patient.identifier');
  }
  return parsed.id;
}

function samePerson(pid: string | undefined, id: NationalId): boolean {
  return pid !== undefined && pid === id.value;
}

function scopeOf(consent: Consent): ReservationScope {
  const code = consent.scope?.coding?.find((c) => c.system === CONSENT_SCOPE_SYSTEM)?.code;
  return code === 'research' ? 'research' : 'patient-privacy';
}

/** A reservation as a Consent: what was recorded, without the person. */
function asConsent(record: ReservationRecord): Consent {
  const extension: Extension[] = [{ url: CHANNEL_EXTENSION, valueCode: record.channel }];
  if (record.withdrawnAt) {
    extension.push({
      url: WITHDRAWN_EXTENSION,
      extension: [
        { url: 'date', valueDateTime: record.withdrawnAt },
        ...(record.withdrawalChannel ? [{ url: 'channel', valueCode: record.withdrawalChannel }] : []),
      ],
    });
  }
  const scope: CodeableConcept = { coding: [{ system: CONSENT_SCOPE_SYSTEM, code: record.scope }] };
  return {
    resourceType: 'Consent',
    id: record.id,
    meta: { lastUpdated: record.withdrawnAt ?? record.recordedAt },
    extension,
    status: record.status,
    scope,
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    dateTime: record.reservedAt,
    policyRule: {
      coding: [{ system: 'https://norpain.no/fhir/CodeSystem/consent-policy', code: 'reservasjonsrett' }],
    },
    provision: { type: 'deny' },
  };
}

function parameters(record: ReservationRecord, receipt?: ReservationReceipt): Parameters {
  const parameter: ParametersParameter[] = [{ name: 'reservation', resource: asConsent(record) }];
  if (receipt) {
    for (const [type, count] of Object.entries(receipt.erased).sort(([a], [b]) => a.localeCompare(b))) {
      parameter.push({
        name: 'erased',
        part: [
          { name: 'type', valueCode: type },
          { name: 'count', valueInteger: count },
        ],
      });
    }
    parameter.push(
      { name: 'versionsErased', valueInteger: receipt.versionsErased },
      { name: 'residual', valueInteger: receipt.residual },
      { name: 'identityDeleted', valueBoolean: receipt.identityDeleted },
      { name: 'followUpsCancelled', valueInteger: receipt.followUpsCancelled },
    );
  }
  return { resourceType: 'Parameters', parameter };
}
