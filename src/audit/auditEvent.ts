import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding, ResourceType } from '@medplum/fhirtypes';
import type { Principal } from '../auth/principal';
import { registryPseudonymSystem } from '../identity/pseudonym';
import { parseLiteralKey } from '../fhir/reference';
import { newServerId } from '../identity/serverId';
import { redactedForAudit } from './nationalIdGuard';

/**
 * What an audit entry says, as a FHIR R4 AuditEvent shaped after IHE Basic Audit Log Patterns (BALP):
 * agents are the OAuth client, its organisation (RESH), the health professional (HPR) or the citizen
 * (by registry pseudonym); entities are the persons concerned (by registry pseudonym), the resources
 * touched and the request id. Express-independent, so the HTTP layer, the ingest pipeline and the
 * identity vault build their entries the same way.
 */

/** Anything that records audit entries: the audit log itself, or a forwarder. */
export interface AuditSink {
  /** Resolves once the entry is durably recorded; rejects (and the caller must fail) otherwise. */
  record(event: AuditEvent): Promise<void>;
}

export const AUDIT_SYSTEMS = {
  registryPseudonym: registryPseudonymSystem,
  oauthClient: 'urn:norpain:oauth-client',
  role: 'urn:norpain:role',
  operation: 'urn:norpain:operation',
  purpose: 'urn:norpain:purpose-of-use',
  resh: 'urn:oid:2.16.578.1.12.4.1.4.102',
  hpr: 'urn:oid:2.16.578.1.12.4.1.4.4',
  eventType: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
  dicom: 'http://dicom.nema.org/resources/ontology/DCM',
  restfulInteraction: 'http://hl7.org/fhir/restful-interaction',
  entityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  roleClass: 'http://terminology.hl7.org/CodeSystem/v3-RoleClass',
  sourceType: 'http://terminology.hl7.org/CodeSystem/security-source-type',
  balpEntityType: 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType',
} as const;

/** FHIR restful-interaction codes, plus `vault-read` for a re-identification through the vault. */
export type AuditInteraction =
  | 'read'
  | 'vread'
  | 'update'
  | 'patch'
  | 'delete'
  | 'history-instance'
  | 'history-type'
  | 'history-system'
  | 'create'
  | 'search-type'
  | 'search-system'
  | 'capabilities'
  | 'transaction'
  | 'batch'
  | 'operation'
  | 'vault-read';

export type AuditAction = NonNullable<AuditEvent['action']>;
export type AuditOutcome = NonNullable<AuditEvent['outcome']>;

/** R4 AuditEvent.action: a search or a system function (operation, Bundle) is "E"xecute. */
const ACTION: Record<AuditInteraction, AuditAction> = {
  create: 'C',
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  'history-type': 'R',
  'history-system': 'R',
  'vault-read': 'R',
  update: 'U',
  patch: 'U',
  delete: 'D',
  'search-type': 'E',
  'search-system': 'E',
  capabilities: 'E',
  transaction: 'E',
  batch: 'E',
  operation: 'E',
};

function actionFor(interaction: AuditInteraction): AuditAction {
  return ACTION[interaction];
}

/** 0 success; 4 the client's request failed (4xx); 8 the server failed (5xx); 12 the service was
 * unavailable (503), i.e. the action could not be offered at all. */
export function outcomeForHttpStatus(status: number): AuditOutcome {
  if (status < 400) {
    return '0';
  }
  if (status < 500) {
    return '4';
  }
  return status === 503 ? '12' : '8';
}

export interface AuditFacts {
  /** Who acted; undefined when the request could not be authenticated or there is no token (see actor). */
  principal?: Principal;
  /** Without a principal: the client id or operator command that acted (e.g. "norpain-cli"). */
  actor?: string;
  interaction: AuditInteraction;
  /** Operation name for interaction "operation", e.g. "$export". */
  operation?: string;
  /** Resources touched: "Type/id", or "Type" for a search or when no id exists yet. */
  resources?: string[];
  /** Registry pseudonyms of the persons concerned. Never a national id. */
  patients?: string[];
  /** For bulk access that names no individuals (coverage linkage, export): how many persons it covered. */
  personCount?: number;
  /** Registry pseudonym of the citizen a portal token acts for (from the token's pid). */
  actorPseudonym?: string;
  outcome: AuditOutcome;
  /** The request's id (also in the log line); absent for work outside a request. */
  requestId?: string;
  /** A batch or transaction: each entry's HTTP status, in entry order (kept in outcomeDesc). */
  entryOutcomes?: string[];
  /** Why, when the interaction needs one (vault reads: "followup-dispatch", "access-request", "coverage"). */
  purpose?: string;
  /** When it happened; defaults to now. */
  recorded?: Date;
}

/**
 * Builds the AuditEvent for one interaction. Only the fields listed in AuditFacts reach the event; the
 * principal's `pid` in particular is never copied (the caller passes `actorPseudonym` instead). The
 * token's other claims (client id, RESH, HPR, study) are the token issuer's text: anything in them that
 * looks like a national id is redacted, so the entry is still written (the log's guard would refuse it).
 */
export function buildAuditEvent(facts: AuditFacts): AuditEvent {
  const subtype: Coding[] = [
    facts.interaction === 'vault-read'
      ? {
          system: AUDIT_SYSTEMS.operation,
          code: 'vault-read',
          display: 'Re-identification through the identity vault',
        }
      : { system: AUDIT_SYSTEMS.restfulInteraction, code: facts.interaction },
  ];
  if (facts.operation !== undefined) {
    subtype.push({ system: AUDIT_SYSTEMS.operation, code: facts.operation });
  }
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    id: newServerId(),
    type:
      facts.interaction === 'vault-read'
        ? { system: AUDIT_SYSTEMS.dicom, code: '110110', display: 'Patient Record' }
        : { system: AUDIT_SYSTEMS.eventType, code: 'rest', display: 'RESTful Operation' },
    subtype,
    action: actionFor(facts.interaction),
    recorded: (facts.recorded ?? new Date()).toISOString(),
    outcome: facts.outcome,
    ...(facts.entryOutcomes === undefined
      ? {}
      : { outcomeDesc: `Bundle entry statuses in order: ${facts.entryOutcomes.join(' ') || '(none)'}` }),
    agent: agentsOf(facts.principal, facts.actor, facts.actorPseudonym),
    source: {
      observer: { display: 'NorPain FHIR server' },
      type: [{ system: AUDIT_SYSTEMS.sourceType, code: '4', display: 'Application Server' }],
    },
    entity: [
      ...unique(facts.patients ?? []).map(patientEntity),
      ...unique(facts.resources ?? []).map(resourceEntity),
      ...(facts.personCount === undefined
        ? []
        : [
            {
              what: { type: 'Patient' as const },
              type: { system: AUDIT_SYSTEMS.entityType, code: '1', display: 'Person' },
              detail: [{ type: 'person-count', valueString: String(facts.personCount) }],
            },
          ]),
      ...(facts.requestId === undefined
        ? []
        : [
            {
              what: { identifier: { value: facts.requestId } },
              type: { system: AUDIT_SYSTEMS.balpEntityType, code: 'XrequestId', display: 'Request Id' },
            },
          ]),
    ],
  };
  if (facts.purpose !== undefined) {
    event.purposeOfEvent = [{ coding: [{ system: AUDIT_SYSTEMS.purpose, code: facts.purpose }] }];
  }
  return event;
}

function agentsOf(
  principal: Principal | undefined,
  actor: string | undefined,
  actorPseudonym: string | undefined,
): AuditEventAgent[] {
  if (principal === undefined) {
    return actor === undefined
      ? [{ who: { display: 'unauthenticated client' }, requestor: true }]
      : [
          {
            who: { identifier: { system: AUDIT_SYSTEMS.oauthClient, value: redactedForAudit(actor) } },
            requestor: true,
          },
        ];
  }
  const human = principal.hpr !== undefined || actorPseudonym !== undefined;
  const client: AuditEventAgent = {
    type: { coding: [{ system: AUDIT_SYSTEMS.dicom, code: '110150', display: 'Application' }] },
    who: { identifier: { system: AUDIT_SYSTEMS.oauthClient, value: redactedForAudit(principal.clientId) } },
    role: [{ coding: [{ system: AUDIT_SYSTEMS.role, code: principal.role }] }],
    requestor: !human,
  };
  if (principal.study !== undefined) {
    // The approved study is the policy that authorised a researcher's access.
    client.policy = [`ResearchStudy/${redactedForAudit(principal.study)}`];
  }
  const agents = [client];
  if (principal.organization !== undefined) {
    agents.push({
      type: { coding: [{ system: AUDIT_SYSTEMS.roleClass, code: 'PROV', display: 'healthcare provider' }] },
      who: { identifier: { system: AUDIT_SYSTEMS.resh, value: redactedForAudit(principal.organization) } },
      requestor: false,
    });
  }
  if (principal.hpr !== undefined) {
    agents.push({
      type: { coding: [{ system: AUDIT_SYSTEMS.roleClass, code: 'PROV', display: 'healthcare provider' }] },
      who: { identifier: { system: AUDIT_SYSTEMS.hpr, value: redactedForAudit(principal.hpr) } },
      requestor: true,
    });
  }
  if (actorPseudonym !== undefined) {
    agents.push({
      type: { coding: [{ system: AUDIT_SYSTEMS.roleClass, code: 'PAT', display: 'patient' }] },
      who: { identifier: { system: AUDIT_SYSTEMS.registryPseudonym, value: actorPseudonym } },
      requestor: true,
    });
  }
  return agents;
}

/** The entity naming a person by registry pseudonym. */
export function patientEntity(pseudonym: string): AuditEventEntity {
  return {
    what: { identifier: { system: AUDIT_SYSTEMS.registryPseudonym, value: pseudonym } },
    type: { system: AUDIT_SYSTEMS.entityType, code: '1', display: 'Person' },
    role: { system: AUDIT_SYSTEMS.objectRole, code: '1', display: 'Patient' },
  };
}

function resourceEntity(ref: string): AuditEventEntity {
  return {
    what: ref.includes('/') ? { reference: ref } : { type: ref as ResourceType },
    type: { system: AUDIT_SYSTEMS.entityType, code: '2', display: 'System Object' },
  };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** The registry pseudonyms of the persons an event concerns. */
export function patientPseudonymsOf(event: AuditEvent): string[] {
  return (event.entity ?? [])
    .filter((e) => e.role?.code === '1' && e.what?.identifier?.system === AUDIT_SYSTEMS.registryPseudonym)
    .map((e) => e.what?.identifier?.value)
    .filter((v): v is string => v !== undefined);
}

/** Identifier values of every agent (client id, RESH, HPR, citizen pseudonym). */
export function agentIdentifiersOf(event: AuditEvent): string[] {
  return event.agent.map((a) => a.who?.identifier?.value).filter((v): v is string => v !== undefined);
}

/** Resource types of the entities touched ("Condition" for both "Condition/1" and a type-only entry). */
export function resourceTypesOf(event: AuditEvent): string[] {
  const types = (event.entity ?? [])
    .filter((e) => e.type?.code === '2' && e.type.system === AUDIT_SYSTEMS.entityType)
    .map((e) => e.what?.type ?? parseLiteralKey(e.what?.reference ?? '')?.resourceType)
    .filter((v): v is ResourceType => v !== undefined);
  return unique(types);
}

export function requestIdOf(event: AuditEvent): string | undefined {
  return event.entity?.find((e) => e.type?.code === 'XrequestId')?.what?.identifier?.value;
}
