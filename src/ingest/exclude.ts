import type { ReservationRegister } from '../consent/register';
import { personsConcerned, type Concerned } from '../consent/concerns';
import type { PersonLockService } from '../consent/personLock';
import { FhirError, errors, issue, operationOutcome } from '../fhir/outcomes';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import { entryLocation, type IngestContext, type Write } from './write';

/**
 * The exclusion stage (DESIGN §2, §3.2): before pseudonymisation and before anything is persisted,
 * every write — single resource, conditional create or update, batch entry, transaction — that concerns
 * a reserved person is refused with 403; a transaction with one such entry is refused whole (the write
 * is one unit here).
 *
 * Unlike the other stages it wraps the rest of the write path: the check and everything up to the commit
 * run while the write holds its persons' keys in the shared person lock, and a reservation takes the same
 * keys exclusively. So a write in flight while a reservation is recorded either commits before the
 * erasure starts (and is erased with the rest) or is checked after the reservation is recorded (and is
 * refused). Writes that name no person (Questionnaire, Organization) take no lock.
 */
export interface WriteGuard {
  /** Runs proceed (the later stages and persist) under the guard, with the context they are to see. */
  guard<T>(
    write: Write,
    ctx: IngestContext,
    proceed: (write: Write, ctx: IngestContext) => Promise<T>,
  ): Promise<T>;
}

export interface ExclusionDeps {
  register: ReservationRegister;
  vault: IdentityVault;
  locks: PersonLockService;
}

/** Lock keys naming a person: what reservations and writes meet on. */
export const personKey = {
  nationalId: (hash: string) => `id:${hash}`,
  patient: (patientId: string) => `patient:${patientId}`,
  pseudonym: (pseudonym: string) => `pseudonym:${pseudonym}`,
};

export function createExclusionGuard(deps: ExclusionDeps): WriteGuard {
  const { register, vault, locks } = deps;

  /** The keys of every person the write concerns, as the vault knows them now. */
  const keysOf = (concerned: Concerned): Set<string> => {
    const keys = new Set<string>();
    for (const { value } of concerned.nationalIds) {
      keys.add(personKey.nationalId(register.hashNationalId(value)));
      const person = vault.find(value);
      if (person) {
        keys.add(personKey.patient(person.patientId));
      }
    }
    for (const { value } of concerned.patientIds) {
      keys.add(personKey.patient(value));
    }
    for (const { value } of concerned.pseudonyms) {
      keys.add(personKey.pseudonym(value));
      const person = vault.findByPseudonym(value);
      if (person) {
        keys.add(personKey.patient(person.patientId));
      }
    }
    return keys;
  };

  const check = (concerned: Concerned): void => {
    for (const { value, where } of concerned.nationalIds) {
      const person = vault.find(value);
      if (
        register.activeFor([register.hashNationalId(value)]) ||
        (person && register.wasErased('patient', person.patientId))
      ) {
        throw reserved(where);
      }
    }
    for (const { value, where } of concerned.patientIds) {
      if (register.wasErased('patient', value)) {
        throw erasedReference(where);
      }
    }
    for (const { value, where } of concerned.pseudonyms) {
      if (register.wasErased('pseudonym', value) && !vault.findByPseudonym(value)) {
        throw erasedReference(where);
      }
    }
  };

  return {
    async guard(write, ctx, proceed) {
      refuseReservationEntries(write);
      const concerned = personsConcerned(write);
      let keys = keysOf(concerned);
      if (keys.size === 0) {
        return proceed(write, ctx);
      }
      // The vault may link an id to a person between computing the keys and getting them; take the
      // keys again, widened, until they are stable while held.
      let release = await locks.acquire(keys, 'shared');
      for (;;) {
        const now = keysOf(concerned);
        if ([...now].every((key) => keys.has(key))) {
          break;
        }
        release();
        keys = new Set([...keys, ...now]);
        release = await locks.acquire(keys, 'shared');
      }
      try {
        check(concerned);
        return await proceed(write, ctx);
      } finally {
        release();
      }
    },
  };
}

/** A reservation is registered on its own (POST /fhir/Consent), never stored in the clinical store. */
function refuseReservationEntries(write: Write): void {
  write.entries.forEach((entry, index) => {
    if (entry.resourceType === 'Consent' && entry.method !== 'DELETE') {
      throw errors.unprocessable([
        issue(
          'not-supported',
          'Consent (reservation) is registered with POST /fhir/Consent on its own, not by update, batch or transaction.',
          entryLocation(write, index) ?? 'Consent',
        ),
      ]);
    }
  });
}

function reserved(where: string): FhirError {
  return new FhirError(
    403,
    operationOutcome([
      issue(
        'forbidden',
        'The person this write concerns has reserved themselves against registration in NorPain, so the registry may not store data about them; nothing was stored. Do not send data about this person.',
        where,
      ),
    ]),
  );
}

function erasedReference(where: string): FhirError {
  return new FhirError(
    403,
    operationOutcome([
      issue(
        'forbidden',
        'The write references a Patient whose data were erased because the person reserved themselves against registration in NorPain; nothing was stored. Do not send data about this person.',
        where,
      ),
    ]),
  );
}
