import type { FhirStore } from '../store/FhirStore';
import { validateProfilesAsReceived, validatePseudonymisedProfiles } from '../validation/profiles';
import { QuestionnaireRegistry, storeQuestionnaireSource } from '../validation/questionnaire';
import { authoriseWrite } from './authorise';
import { isUnresolvedWrite } from '../store/ambiguousWrite';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { IntentTarget, WriteJournal } from './journal';
import { persistWrite, type PersistOutcome } from './persist';
import { canonicaliseReferences, type ReferenceResolution } from './references';
import { cachedQuestionnaireSource, touchesQuestionnaire } from './questionnaire-cache';
import { questionnaireStage, repeatedAnswersStage } from './questionnaire-stage';
import { acceptedTypesStage } from './scope';
import { validateBase } from './validate';
import type { WriteGuard } from './exclude';
import type { IngestContext, IngestStage, Write } from './write';

/**
 * The path of every write (DESIGN §2): authorise → references → validate → exclude → pseudonymise → persist
 * → audit.
 * Each stage is a module of its own; to add one, add one line to the lists below. Audit is the router's
 * (src/fhir/audit.ts): it records one AuditEvent per request, refused or not, before answering.
 */
export interface IngestPipeline {
  /** Runs the write through every stage; returns what persist produced. Throws a FhirError on refusal. */
  run(write: Write, ctx: IngestContext): Promise<PersistOutcome>;
  /** Runs only the validation stages ($validate): throws the FhirError a write would get, else returns. */
  validate(write: Write, ctx: IngestContext): Promise<void>;
}

export interface IngestDeps {
  store: FhirStore;
  /** Conditional references resolved, literal ones required to exist (src/ingest/references.ts). */
  references: ReferenceResolution;
  /** The pseudonymise stage (src/ingest/pseudonymise.ts), built with the identity vault. It wraps the
   * stages after it and persist, so the identity vault keeps a write's changes only if it is persisted. */
  pseudonymise?: WriteGuard;
  /** Inclusion criteria (src/consent/inclusion.ts): participating unit, age at episode start. */
  inclusion?: IngestStage;
  /** The exclusion stage (src/ingest/exclude.ts): refuses writes about reserved persons, and holds the
   * person lock from its check through pseudonymise and persist. */
  exclude?: WriteGuard;
  /** Who gave a portal response: only the person (src/ingest/authorise.ts); runs once conditional
   * references are resolved. */
  respondent?: IngestStage;
  /** Whose data a write touches, and the unit labels (src/ingest/authorise.ts); runs after pseudonymise. */
  ownership?: IngestStage;
  /** The write journal: every write's intent is recorded before it reaches the store (src/ingest/journal.ts). */
  journal?: WriteJournal;
  /** Builds (and checks) a write's audit entry before it is sent; recovery records it if the request's own
   * entry is missing. Throwing refuses the write before anything is stored. */
  pendingAudit?: (write: Write, ctx: IngestContext, targets: IntentTarget[]) => AuditEvent;
}

export function createIngestPipeline(deps: IngestDeps): IngestPipeline {
  // Questionnaire look-ups are cached (a store search per response otherwise); writes of Questionnaires
  // through this pipeline invalidate the cache below.
  const questionnaires = cachedQuestionnaireSource(storeQuestionnaireSource(deps.store));
  const registry = new QuestionnaireRegistry(questionnaires);
  const validation: IngestStage[] = [
    acceptedTypesStage, // only the resource types of the data dictionary (src/dictionary)
    repeatedAnswersStage(registry), // a repeating question split over items (Refero «Legg til») → one item
    validateBase,
    validateProfilesAsReceived, // NorPain profiles of EpisodeOfCare, QuestionnaireResponse, Consent, ResearchStudy
    questionnaireStage(registry), // QR vs its Questionnaire; scores
  ];
  const beforeExclusion: IngestStage[] = [
    authoriseWrite,
    canonicaliseReferences, // every reference in canonical form, or 422 saying why
    deps.references.resolveConditional, // Type?query → the one resource it matches in the caller's view
    ...(deps.respondent ? [deps.respondent] : []), // a portal response's author and source: the person
    ...validation,
    ...(deps.inclusion ? [deps.inclusion] : []),
  ];
  // exclude (deps.exclude) wraps these and persist: refuse writes about reserved persons (src/consent)
  // pseudonymise (deps.pseudonymise) wraps these and persist: national id → registry pseudonym, identifiers dropped
  const guarded: IngestStage[] = [
    // After the data dictionary: a reference in an element it drops is dropped, not refused.
    deps.references.requireTargets, // every other literal that is stored names a resource the caller sees
    validatePseudonymisedProfiles, // the NorPain Patient profile holds for what is stored
    ...(deps.ownership ? [deps.ownership] : []), // own unit / own person; unit labels
  ];
  const checkAndPersist = async (write: Write, ctx: IngestContext): Promise<PersistOutcome> => {
    let current = write;
    for (const stage of guarded) {
      current = await stage(current, ctx);
    }
    const pendingAudit = deps.pendingAudit;
    return persistWrite(deps.store, current, {
      intent: ctx.intent,
      audit: pendingAudit && ((w, targets) => pendingAudit(w, ctx, targets)),
    });
  };
  // After the exclusion check, so that a reference to an erased person's Patient gets its 403 there.
  const pseudonymiseAndPersist = async (write: Write, ctx: IngestContext) => {
    const resolved = await deps.references.requirePatients(write, ctx); // as sent, before persons are linked
    return deps.pseudonymise?.guard(resolved, ctx, checkAndPersist) ?? checkAndPersist(resolved, ctx);
  };
  return {
    async run(write, requestCtx) {
      let current = write;
      for (const stage of beforeExclusion) {
        current = await stage(current, requestCtx);
      }
      const intent = deps.journal?.begin(requestCtx.requestId, write.transaction);
      const ctx: IngestContext = { ...requestCtx, intent };
      try {
        const outcome = deps.exclude
          ? await deps.exclude.guard(current, ctx, pseudonymiseAndPersist)
          : await pseudonymiseAndPersist(current, ctx);
        // Closed once the request's audit entry is recorded (by the router), or now if nobody audits.
        if (intent && ctx.intents) ctx.intents.add(intent);
        else intent?.close();
        return outcome;
      } catch (err) {
        // A write that was stored, or whose outcome is unknown, stays in the journal for recovery to
        // complete (vault links, audit entry); any other failure stored nothing.
        if (intent?.stored || isUnresolvedWrite(err)) intent?.release();
        else intent?.close();
        throw err;
      } finally {
        // Also when persisting failed: a transaction may have failed after HAPI committed it.
        if (touchesQuestionnaire(current)) questionnaires.invalidate();
      }
    },
    async validate(write, ctx) {
      let current = write;
      for (const stage of [canonicaliseReferences, ...validation]) {
        current = await stage(current, ctx);
      }
    },
  };
}
