import type { OperationOutcomeIssue, Resource, ResourceType } from '@medplum/fhirtypes';
import type { Principal } from '../auth/principal';
import type { RequestIntents, WriteIntent } from './journal';

/**
 * Every write, whatever the channel (single resource, conditional create or update, batch entry or
 * transaction), is normalised to a Write before it enters the ingest pipeline, so that each stage
 * (validate, exclude, pseudonymise, persist) handles all channels in one place.
 */
export interface WriteEntry {
  method: 'POST' | 'PUT' | 'DELETE';
  resourceType: ResourceType;
  /** Target id for PUT and DELETE by id; for a create, the id persist chose for it. */
  id?: string;
  resource?: Resource;
  /** Expected current versionId (bare) for PUT with If-Match. */
  ifMatch?: string;
  /** Conditional create query (If-None-Exist / request.ifNoneExist). */
  ifNoneExist?: string;
  /** Conditional update or delete query (PUT Type?query). */
  conditionalQuery?: string;
  /** The entry's fullUrl in a transaction (urn:uuid:...), for reference resolution. */
  fullUrl?: string;
  /** Set by the pseudonymise stage: warnings naming what the data dictionary did not keep (src/ingest/notStored.ts). */
  notStored?: OperationOutcomeIssue[];
  /** Set by the pseudonymise stage: a Patient named by its registry pseudonym alone (an EPR writing back
   * the Patient it read), which only a writer that already sees that Patient may write. */
  byPseudonym?: boolean;
  /** Set by persist: a create whose id was chosen for it (src/ingest/persist.ts). */
  fresh?: boolean;
  /** Set by the follow-up's stage (src/followup/answers.ts): the follow-up Task a QuestionnaireResponse
   * names in `basedOn`. Not stored there (R4 allows only CarePlan and ServiceRequest): the Task's `output`
   * names the response instead. */
  answersTask?: { taskId: string; basedOnIndex: number };
}

export interface Write {
  /** true when the write came as a transaction Bundle: all or nothing, even with one entry, and error
   * expressions point into the Bundle. false for a single-resource interaction or one batch entry. */
  transaction: boolean;
  entries: WriteEntry[];
}

/** Where entry `index` stands, for error expressions: `Bundle.entry[i]` in a transaction; undefined for a
 * single-resource write, whose expressions start at the resource type. */
export function entryLocation(write: Write, index: number): string | undefined {
  return write.transaction ? `Bundle.entry[${index}]` : undefined;
}

/** Anchors an issue found in entry `index`'s resource at that entry of a transaction
 * ("Patient.name[0].use" → "Bundle.entry[3].resource.name[0].use"); unchanged for a single write. */
export function issueAtEntry(
  found: OperationOutcomeIssue,
  write: Write,
  index: number,
): OperationOutcomeIssue {
  const location = entryLocation(write, index);
  if (location === undefined || found.expression === undefined) {
    return found;
  }
  const anchor = `${location}.resource`;
  return {
    ...found,
    expression: found.expression.map((e) => {
      const dot = e.indexOf('.');
      return dot < 0 ? anchor : anchor + e.slice(dot);
    }),
  };
}

export interface IngestContext {
  principal: Principal;
  /** Correlates the log line and the audit event of one request. */
  requestId: string;
  /** The FHIR base as the client sees it, without a trailing slash: absolute references to it are this
   * server's own and are made relative (src/ingest/references.ts). */
  base: string;
  /**
   * Set by the pseudonymise stage for the stages after it: the Patient id this write gives a person named
   * by a national id (the bare number). The identity vault learns such persons only once the write is
   * persisted, so without this a person's first write (e.g. the portal's first answer) could not be
   * checked as being about the person the token acts for.
   */
  patientIdInWrite?: (nationalId: string) => string | undefined;
  /**
   * Set by the pseudonymise stage for the stages after it: the stored Patient a Patient entry replaces, as
   * that stage found it under the write's exclusive person lock (null: there is none, e.g. a person new
   * to the vault), or undefined when it did not look. Saves the ownership stage reading it again.
   */
  storedPatient?: (patientId: string) => Resource | null | undefined;
  /** This write's entry in the write journal (src/ingest/journal.ts), set by the pipeline. */
  intent?: WriteIntent;
  /** The request's intents, closed by the router once the request's audit entry is recorded. */
  intents?: RequestIntents;
}

/** One stage of the ingest pipeline. It returns the (possibly rewritten) write or throws a FhirError. */
export type IngestStage = (write: Write, ctx: IngestContext) => Promise<Write> | Write;
