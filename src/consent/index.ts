import type { Env } from '../config/secrets';
import type { FhirOperation } from '../fhir/classify';
import type { Pseudonymiser } from '../identity/pseudonym';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import { createExclusionGuard, type WriteGuard } from '../ingest/exclude';
import type { IngestStage } from '../ingest/write';
import type { Logger } from '../logging/logger';
import { correctOperation } from '../rights/correct';
import { everythingOperation } from '../rights/everything';
import type { FhirStore } from '../store/FhirStore';
import { isParticipatingUnit } from '../units/units';
import { FollowUpCancellers } from './followUps';
import { PersonCopies } from './personCopies';
import { reservationOperation } from './http';
import { createInclusionStage, loadInclusionCriteria } from './inclusion';
import { loadReservationKey } from './keys';
import { PersonLocks, type PersonLockService } from './personLock';
import type { StateConfig } from '../state';
import { ReservationRegister } from './register';
import { ReservationService } from './reservation';

/**
 * Reservations, exclusion, inclusion criteria and the person's rights, assembled for the server:
 * the exclusion guard and the inclusion stage for the ingest pipeline, and the custom operations for
 * the FHIR router (POST/GET Consent, Patient/$everything, $correct).
 */
export interface ConsentServices {
  register: ReservationRegister;
  locks: PersonLockService;
  reservations: ReservationService;
  exclude: WriteGuard;
  inclusion: IngestStage;
  operations: FhirOperation[];
  /** Where the follow-up module registers its canceller. */
  followUps: FollowUpCancellers;
  /** Where an erasure removes copies of the person (the vault; the server adds the rest). */
  copies: PersonCopies;
  close(): void;
}

export function openConsent(options: {
  env: Env;
  production: boolean;
  dataDir: string;
  /** Where the register's rows live; SQLite under dataDir by default. */
  state?: StateConfig;
  /** The person locks writes and reservations meet on; in this process only by default. */
  locks?: PersonLockService;
  store: FhirStore;
  vault: IdentityVault;
  pseudonymiser: Pseudonymiser;
  unitsFile: string;
  logger: Logger;
}): ConsentServices {
  const { store, vault, production } = options;
  const key = loadReservationKey({
    env: options.env,
    production,
    dataDir: options.dataDir,
    onCreated: (message, file) => options.logger.warn(message, { component: 'consent', file }),
  });
  const criteria = loadInclusionCriteria(options.env, (resh) => isParticipatingUnit(resh, options.unitsFile));
  const register = ReservationRegister.open({
    file: ReservationRegister.defaultFile(options.dataDir),
    state: options.state,
    key,
  });
  const locks = options.locks ?? new PersonLocks();
  const followUps = new FollowUpCancellers();
  // The register is not on the list: its pending erasure is deleted, and scrubbed, last (reservation.ts).
  const copies = new PersonCopies([vault]);
  const reservations = new ReservationService({ register, vault, locks, store, followUps, copies });
  return {
    register,
    locks,
    reservations,
    exclude: createExclusionGuard({ register, vault, locks }),
    inclusion: createInclusionStage({ criteria, store, vault }),
    operations: [
      {
        type: 'Consent',
        handle: reservationOperation({
          service: reservations,
          register,
          production,
          vault,
          pseudonymiser: options.pseudonymiser,
        }),
      },
      {
        name: '$everything',
        levels: ['type'],
        types: ['Patient'],
        methods: ['GET'],
        roles: ['portal'],
        permission: 'r',
        handle: everythingOperation({ vault, production }),
      },
      {
        name: '$correct',
        levels: ['instance'],
        methods: ['POST'],
        roles: ['registry-admin'],
        permission: 'u',
        handle: correctOperation(),
      },
    ],
    followUps,
    copies,
    close: () => register.close(),
  };
}

export { ReservationRegister } from './register';
