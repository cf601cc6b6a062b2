import { errors, isFhirError } from '../fhir/outcomes';
import type { NationalId } from '../identity/nationalId';
import type { VaultReadContext } from '../identity/vault/audit';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import { personKey } from '../ingest/exclude';
import type { FhirStore } from '../store/FhirStore';
import type { FollowUpCanceller } from './followUps';
import type { PersonCopies } from './personCopies';
import type { PersonLockService } from './personLock';
import type {
  ReservationChannel,
  ReservationRecord,
  ReservationRegister,
  ReservationScope,
} from './register';

function emptyReceipt(): ReservationReceipt {
  return { erased: {}, versionsErased: 0, residual: 0, identityDeleted: false, followUpsCancelled: 0 };
}

/** What a reservation erased. No identifiers: counts only. */
export interface ReservationReceipt {
  /** Resources erased per resource type (each with all its versions). */
  erased: Record<string, number>;
  versionsErased: number;
  /** What the store's independent check still finds of the person after the erasure (its reference
   * index, and a scan of every stored version for the person's Patient id and pseudonym); 0, or the
   * request fails. */
  residual: number;
  /** Whether the identity vault held the person (and now no longer does). */
  identityDeleted: boolean;
  followUpsCancelled: number;
}

export interface ReservationDeps {
  register: ReservationRegister;
  vault: IdentityVault;
  locks: PersonLockService;
  store: FhirStore;
  followUps: FollowUpCanceller;
  /** Where copies of the person's data live beside the clinical store, removed once their rows are gone. */
  copies: PersonCopies;
}

/**
 * Reserving and withdrawing (DESIGN §3.2). Each runs as one serialised step per person: it holds the
 * person's keys exclusively in the person lock that every write about the person holds shared, so no
 * write about them can be between its exclusion check and its commit meanwhile.
 *
 * Reserving, in an order that a crash at any point leaves safe and that a repeated request completes:
 * 1. record the reservation (hash of the given id) and mark the pseudonymous Patient id and pseudonym
 *    as erased, in one register transaction — from here on every write about the person is refused;
 * 2. physically erase the Patient compartment in the clinical store (all resources, all versions);
 * 3. verify, independently of how the erasure found what it erased (the store's reference index, and a
 *    scan of every stored version for the Patient id and pseudonym), that nothing of the person is left;
 *    when something is, erase once more (a store that lags, such as HAPI's search index, may show a
 *    referrer only then); if something is still left, fail with 503 and say so, before step 4, so that
 *    sending the reservation again retries the erasure;
 * 4. delete the identity vault entry, adding the hashes of every id the vault knew for the person;
 * 5. cancel pending follow-ups;
 * 6. remove the copies beside the clinical store (personCopies.ts): no byte of a deleted row about the
 *    person left in the façade's own databases, no export holding them; then mark the erasure complete
 *    and scrub the register of its pending row.
 */
export class ReservationService {
  constructor(private readonly deps: ReservationDeps) {}

  async reserve(
    input: { id: NationalId; scope: ReservationScope; channel: ReservationChannel; reservedAt: string },
    actor: VaultReadContext,
  ): Promise<{ record: ReservationRecord; created: boolean; receipt: ReservationReceipt }> {
    const { register, vault } = this.deps;
    const hash = register.hashNationalId(input.id);
    const keys = (): string[] => {
      const person = vault.find(input.id);
      const found = [personKey.nationalId(hash)];
      if (person) {
        found.push(personKey.patient(person.patientId), personKey.pseudonym(person.pseudonym));
      }
      return found;
    };
    const release = await this.lockStable(keys);
    try {
      const person = vault.find(input.id);
      const { record, created } = register.reserve({
        hashes: [hash],
        scope: input.scope,
        channel: input.channel,
        reservedAt: input.reservedAt,
        erasing: person,
      });
      const receipt = emptyReceipt();
      if (person) {
        await this.eraseRecorded(record.id, person, actor, receipt);
      }
      return { record, created, receipt };
    } finally {
      release();
    }
  }

  /**
   * Completes the erasures of recorded reservations that a crash or a store outage interrupted (at
   * start-up and in the background, without the client). Returns how many were completed; an erasure
   * that fails again stays pending for the next run.
   */
  async completePendingErasures(actor: VaultReadContext): Promise<number> {
    let completed = 0;
    for (const pending of this.deps.register.pendingErasures()) {
      const person = { patientId: pending.patientId, pseudonym: pending.pseudonym };
      const release = await this.deps.locks.acquire(
        [personKey.patient(person.patientId), personKey.pseudonym(person.pseudonym)],
        'exclusive',
      );
      try {
        await this.eraseRecorded(pending.reservationId, person, actor, emptyReceipt());
        completed++;
      } catch {
        // Still pending (store unreachable, or data left): the next run tries again.
      } finally {
        release();
      }
    }
    return completed;
  }

  /**
   * Steps 2–5 for a recorded reservation of a person the registry held. Each step may run again, so a
   * pending erasure (register.pendingErasures) is completed by running this again; it is marked complete
   * only when nothing is left. While the store is unreachable the answer says what is true: the
   * reservation is recorded and the erasure will complete by itself.
   */
  private async eraseRecorded(
    reservationId: string,
    person: { patientId: string; pseudonym: string },
    actor: VaultReadContext,
    receipt: ReservationReceipt,
  ): Promise<void> {
    const { register, vault, store, followUps, copies } = this.deps;
    const erase = async () => {
      const erased = await store.erasePatientCompartment(person.patientId, { texts: [person.pseudonym] });
      for (const [type, n] of Object.entries(erased.erased)) {
        receipt.erased[type] = (receipt.erased[type] ?? 0) + n;
      }
      receipt.versionsErased += erased.versionsErased;
      receipt.residual = erased.residual;
    };
    try {
      await erase();
      if (receipt.residual !== 0) {
        await erase(); // a referrer written while the first pass ran is found by the second
      }
    } catch (err) {
      if (isFhirError(err) && err.status === 503) {
        throw errors.serviceUnavailable(
          'The reservation is recorded and the person is kept out of the registry from now on. The FHIR store is not reachable at the moment, so the erasure of their data will complete by itself once it is; there is no need to send the reservation again.',
          30,
        );
      }
      throw err;
    }
    if (receipt.residual !== 0) {
      // The reservation is recorded (the person stays out) and its erasure stays pending. The vault entry
      // is kept, so that the erasure still finds the person once the traces are removed: retried in the
      // background, or when the reservation is sent again.
      throw errors.serviceUnavailable(
        `The reservation is recorded, but after erasing twice the store still holds ${receipt.residual} trace(s) of the person that the erasure could not reach; registry staff must remove them, then the erasure completes by itself (or when the reservation is sent again).`,
        5,
      );
    }
    const ids = vault.erase(person.patientId, actor) ?? [];
    register.addHashes(
      reservationId,
      ids.map((id) => register.hashNationalId(id)),
    );
    receipt.identityDeleted = true;
    receipt.followUpsCancelled = await followUps.cancelPendingFollowUps(person.patientId);
    // The copies go while the erasure is still pending: a scrub that fails (503) leaves it pending, so the
    // background run, or the reservation sent again, removes them again. The pending erasure's own row
    // names the person too: it goes last, and the register is scrubbed after it.
    await copies.remove({ ...person, nationalIds: ids.map((id) => id.value) });
    register.erasureComplete(person.patientId);
    register.scrub([person.patientId, person.pseudonym]);
  }

  /** Sets the person's active reservation inactive; undefined when they have none. */
  async withdraw(id: NationalId, channel: ReservationChannel): Promise<ReservationRecord | undefined> {
    const { register } = this.deps;
    const hash = register.hashNationalId(id);
    const keys = (): string[] => {
      const active = register.activeFor([hash]);
      const hashes = active ? register.hashesOf(active.id) : [hash];
      return [hash, ...hashes].map(personKey.nationalId);
    };
    const release = await this.lockStable(keys);
    try {
      return register.withdraw([hash], channel);
    } finally {
      release();
    }
  }

  /** Takes the keys exclusively, again and wider while the vault or register changed them meanwhile. */
  private async lockStable(keysNow: () => string[]): Promise<() => void> {
    let keys = new Set(keysNow());
    for (;;) {
      const release = await this.deps.locks.acquire(keys, 'exclusive');
      const again = keysNow();
      if (again.every((key) => keys.has(key))) {
        return release;
      }
      release();
      keys = new Set([...keys, ...again]);
    }
  }
}
