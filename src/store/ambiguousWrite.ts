import { FhirError, issue, operationOutcome } from '../fhir/outcomes';

/**
 * A write was sent to the store and no answer came back (timeout, connection lost after sending): it
 * may or may not have been stored. The store never tells a client "nothing was changed" in that case;
 * the ingest pipeline looks the write up by its ids (src/ingest/persist.ts) and answers from what it finds.
 */
export class AmbiguousWriteError extends FhirError {
  constructor(retryAfterSeconds: number) {
    super(
      ...transient(
        'The FHIR store did not answer after the write was sent; it may have been stored.',
        retryAfterSeconds,
      ),
    );
  }
}

/**
 * The write may have been stored and the store could not be asked whether it was: the server keeps the
 * write's intent and completes or undoes it by itself once the store answers again (src/ingest/recovery.ts).
 */
export class UnresolvedWriteError extends FhirError {
  constructor(retryAfterSeconds: number) {
    super(
      ...transient(
        'The FHIR store stopped answering while this write was being stored, so whether it was stored is not known yet. The server will complete it (identity link and audit entry) or undo it by itself once the store is reachable; read the data back before sending it again.',
        retryAfterSeconds,
      ),
    );
  }
}

/** The arguments of a 503 whose outcome is not known yet. */
function transient(text: string, retryAfterSeconds: number): ConstructorParameters<typeof FhirError> {
  return [503, operationOutcome([issue('transient', text)]), { 'Retry-After': String(retryAfterSeconds) }];
}

export function isAmbiguousWrite(err: unknown): err is AmbiguousWriteError {
  return err instanceof AmbiguousWriteError;
}

export function isUnresolvedWrite(err: unknown): err is UnresolvedWriteError {
  return err instanceof UnresolvedWriteError;
}
