import type { EpisodeOfCare, Identifier, Patient, Reference } from '@medplum/fhirtypes';
import { ConfigError } from '../config/ConfigError';
import type { Env } from '../config/secrets';
import { errors, isFhirError, issue } from '../fhir/outcomes';
import { identifierOfConditional, parseReference, type ParsedReference } from '../fhir/reference';
import { assignerKey, nationalIdKindOf, parseNationalIdValue, sameSystem } from '../identity/nationalId';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import { entryLocation, type IngestStage, type Write, type WriteEntry } from '../ingest/write';
import type { FhirStore } from '../store/FhirStore';
import { RESH_SYSTEM } from '../units/units';

/**
 * Inclusion criteria (DESIGN §2, "exclude" column): which data the registry may hold at all. One module,
 * configured at start:
 *
 * - participating-unit: a clinic token must act for a participating unit (config/units.json, UNITS_FILE),
 *   and an EpisodeOfCare's managingOrganization (RESH id) must be one;
 * - minimum-age: the person must have been at least INCLUSION_MIN_AGE years old (default 18) when the
 *   episode started (EpisodeOfCare.period.start). The birth date is the Patient's in the same write (exact,
 *   as sent) or the stored pseudonymous Patient's (year and month only; read as the first of the month, so
 *   a person who may already be of age is not refused). When no birth date is known the rule cannot be
 *   applied and the episode is accepted.
 *
 * A violation is a 422 whose text names the rule; the stage runs before anything is stored.
 */
export interface InclusionCriteria {
  minimumAge: number;
  isParticipatingUnit(resh: string): boolean;
}

export function loadInclusionCriteria(
  env: Env,
  isParticipatingUnit: (resh: string) => boolean,
): InclusionCriteria {
  const text = env.INCLUSION_MIN_AGE?.trim();
  let minimumAge = 18;
  if (text !== undefined && text !== '') {
    if (!/^\d{1,3}$/.test(text) || Number(text) > 130) {
      throw new ConfigError('INCLUSION_MIN_AGE must be a whole number of years (e.g. 18)');
    }
    minimumAge = Number(text);
  }
  return { minimumAge, isParticipatingUnit };
}

export interface InclusionDeps {
  criteria: InclusionCriteria;
  store: FhirStore;
  vault: IdentityVault;
}

export function createInclusionStage(deps: InclusionDeps): IngestStage {
  const { criteria } = deps;
  return async (write, ctx) => {
    const org = ctx.principal.organization;
    if (ctx.principal.role === 'clinic' && org !== undefined && !criteria.isParticipatingUnit(org)) {
      throw violation(
        'participating-unit',
        'the unit this token acts for does not take part in NorPain, so the registry may not receive its data',
        undefined,
      );
    }
    for (const [index, entry] of write.entries.entries()) {
      if (entry.resource?.resourceType !== 'EpisodeOfCare' || entry.method === 'DELETE') {
        continue;
      }
      const episode = entry.resource;
      const location = entryLocation(write, index);
      const at = (path: string): string =>
        location === undefined ? `EpisodeOfCare.${path}` : `${location}.resource.${path}`;
      const unit = episode.managingOrganization?.identifier;
      if (
        unit !== undefined &&
        sameSystem(unit.system, RESH_SYSTEM) &&
        unit.value !== undefined &&
        !criteria.isParticipatingUnit(unit.value)
      ) {
        throw violation(
          'participating-unit',
          'the episode belongs to a unit that does not take part in NorPain',
          at('managingOrganization.identifier.value'),
        );
      }
      const start = episode.period?.start;
      if (start === undefined || criteria.minimumAge === 0) {
        continue;
      }
      const birthDate = await birthDateOf(deps, write, episode);
      if (birthDate !== undefined && ageAt(birthDate, start) < criteria.minimumAge) {
        throw violation(
          'minimum-age',
          `the person was under ${criteria.minimumAge} when the episode started; NorPain registers adults only`,
          at('period.start'),
        );
      }
    }
    return write;
  };
}

function violation(rule: string, text: string, expression: string | undefined) {
  return errors.unprocessable([
    issue(
      'business-rule',
      `Inclusion criterion '${rule}' is not met: ${text}. Nothing was stored.`,
      expression,
    ),
  ]);
}

/** The birth date of the episode's patient, from the same write or the store; undefined when unknown. */
async function birthDateOf(
  deps: InclusionDeps,
  write: Write,
  episode: EpisodeOfCare,
): Promise<string | undefined> {
  const reference: Reference | undefined = episode.patient;
  if (!reference) {
    return undefined;
  }
  const target = targetOf(reference);
  const inWrite = write.entries.find((entry) => sameSubject(entry, reference, target));
  if (inWrite) {
    return (inWrite.resource as Patient).birthDate;
  }
  let patientId: string | undefined;
  if (target?.kind === 'literal' && target.resourceType === 'Patient') {
    patientId = target.id; // also Patient/<id>/_history/<version>: the person is the same
  } else {
    const identifier = reference.identifier ?? conditionalIdentifier(target);
    const kind = identifier ? nationalIdKindOf(identifier) : undefined;
    if (identifier?.value && kind) {
      const parsed = parseNationalIdValue(
        kind,
        identifier.value,
        { production: false },
        assignerKey(identifier),
      );
      patientId = parsed.ok ? deps.vault.find(parsed.id)?.patientId : undefined;
    }
  }
  if (patientId === undefined) {
    return undefined;
  }
  try {
    return (await deps.store.read<Patient>('Patient', patientId)).birthDate;
  } catch (err) {
    if (isFhirError(err) && (err.status === 404 || err.status === 410)) {
      return undefined;
    }
    throw err;
  }
}

/** The parsed (canonical, see src/ingest/references.ts) reference, if it has a reference string. */
function targetOf(reference: Reference): ParsedReference | undefined {
  const parsed = reference.reference === undefined ? undefined : parseReference(reference.reference);
  return parsed?.ok ? parsed.reference : undefined;
}

function conditionalIdentifier(target: ParsedReference | undefined): Identifier | undefined {
  return target?.kind === 'conditional' && target.resourceType === 'Patient'
    ? identifierOfConditional(target)
    : undefined;
}

/** Whether a Patient entry of the write is the one the reference names (by fullUrl, id or identifier). */
function sameSubject(entry: WriteEntry, reference: Reference, target: ParsedReference | undefined): boolean {
  const patient = entry.resource;
  if (patient?.resourceType !== 'Patient') {
    return false;
  }
  if (target?.kind === 'placeholder' && reference.reference === entry.fullUrl) {
    return true;
  }
  const id = entry.id ?? patient.id;
  if (
    target?.kind === 'literal' &&
    target.resourceType === 'Patient' &&
    id !== undefined &&
    target.id === id
  ) {
    return true;
  }
  const wanted = reference.identifier ?? conditionalIdentifier(target);
  return (
    wanted !== undefined &&
    (patient.identifier ?? []).some((i) => sameSystem(i.system, wanted.system) && i.value === wanted.value)
  );
}

/** Whole years from a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD; missing parts read as the first) to a date. */
function ageAt(birthDate: string, at: string): number {
  const [by, bm = 1, bd = 1] = birthDate.slice(0, 10).split('-').map(Number);
  const [ay, am = 1, ad = 1] = at.slice(0, 10).split('-').map(Number);
  let age = ay - by;
  if (am < bm || (am === bm && ad < bd)) {
    age--;
  }
  return age;
}
