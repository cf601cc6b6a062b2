import { formatReference } from '../fhir/reference';
import type { Invitation } from './channel';

/**
 * The invitation message every channel delivers (docs/followup.md, "The invitation message"): what the
 * person's inbox needs to show the form and link the answer back to the Task. It is the only place the
 * national id leaves the identity vault, so nothing may log or store it.
 */
export interface InvitationMessage {
  type: 'norpain.followup.invitation';
  version: 1;
  /** The consumer's deduplication key; also the AMQP message_id. */
  idempotencyKey: string;
  kind: Invitation['kind'];
  attempt: number;
  /** The follow-up Task (`Task/<id>`), which the answer's `basedOn` names. */
  task: string;
  /** The Questionnaire's versioned canonical (`url|version`). */
  questionnaire: string;
  nationalId: string;
  expires: string;
}

export const INVITATION_MESSAGE_TYPE = 'norpain.followup.invitation';

export function invitationMessage(invitation: Invitation): InvitationMessage {
  return {
    type: INVITATION_MESSAGE_TYPE,
    version: 1,
    idempotencyKey: invitation.idempotencyKey,
    kind: invitation.kind,
    attempt: invitation.attempt,
    task: formatReference({ kind: 'literal', resourceType: 'Task', id: invitation.taskId }),
    questionnaire: invitation.questionnaire,
    nationalId: invitation.nationalId,
    expires: invitation.expires,
  };
}
