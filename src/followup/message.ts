import type { Invitation } from './channel';

/**
 * The body of one invitation message, the same whichever channel carries it (the outbox's file, the AMQP
 * message's body); documented in docs/followup.md. The national id is here and nowhere else we keep.
 */
export interface InvitationMessage {
  type: 'norpain-follow-up-invitation';
  version: 1;
  idempotencyKey: string;
  kind: Invitation['kind'];
  attempt: number;
  /** `Task/<id>`: what the answer's QuestionnaireResponse.basedOn names. */
  task: string;
  /** The Questionnaire's versioned canonical, `url|version`. */
  questionnaire: string;
  /** The person's national id (fødselsnummer or D-number). */
  recipient: string;
  expires: string;
}

export function invitationMessage(invitation: Invitation): InvitationMessage {
  return {
    type: 'norpain-follow-up-invitation',
    version: 1,
    idempotencyKey: invitation.idempotencyKey,
    kind: invitation.kind,
    attempt: invitation.attempt,
    task: `Task/${invitation.taskId}`,
    questionnaire: invitation.questionnaire,
    recipient: invitation.nationalId,
    expires: invitation.expires,
  };
}
