/**
 * Cancelling a person's pending follow-ups when they reserve themselves (DESIGN §3.2, §9). The follow-up
 * module does not exist yet; when it does, it registers a canceller here (server wiring) and the
 * reservation calls every registered one inside the person's serialised step.
 */
export interface FollowUpCanceller {
  /** Cancels (and forgets) every pending follow-up of the pseudonymous Patient; returns how many. */
  cancelPendingFollowUps(patientId: string): Promise<number>;
}

export class FollowUpCancellers implements FollowUpCanceller {
  private readonly cancellers: FollowUpCanceller[] = [];

  register(canceller: FollowUpCanceller): void {
    this.cancellers.push(canceller);
  }

  async cancelPendingFollowUps(patientId: string): Promise<number> {
    let total = 0;
    for (const canceller of this.cancellers) {
      total += await canceller.cancelPendingFollowUps(patientId);
    }
    return total;
  }
}
