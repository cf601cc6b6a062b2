import type { FhirStore } from '../store/FhirStore';
import { checkProfilesAsReceived, validatePseudonymisedProfiles } from '../validation/profiles';
import { QuestionnaireRegistry, storeQuestionnaireSource } from '../validation/questionnaire';
import { authoriseWrite } from './authorise';
import { isUnresolvedWrite } from '../store/ambiguousWrite';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { IntentTarget, WriteJournal } from './journal';
import { persistWrite, type PersistOutcome } from './persist';
import { canonicaliseReferences, type ReferenceResolution } from './references';
import { cachedQuestionnaireSource, touchesQuestionnaire } from './questionnaire-cache';
import { questionnaireCheck, repeatedAnswersStage } from './questionnaire-stage';
import { acceptedTypesStage } from './scope';
import { approvalCheck } from '../research/approvalCheck';
import { checkBase } from './validate';
import { refusing, type CheckOptions, type IngestCheck } from './check';
import { isFhirError } from '../fhir/outcomes';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { WriteGuard } from './exclude';
import type { IngestContext, IngestStage, Write } from './write';

/**
 * The path of every write (DESIGN §2), as one list of named steps (`steps` below): authorise, references,
 * validate, include, journal, exclude, pseudonymise, own, persist, then the steps after persist (`afterPersist`:
 * follow-up); audit is the router's (src/fhir/audit.ts),
 * which records one AuditEvent per request, refused or not, before answering, and whose entry for a write is
 * built and checked before the write is sent (`pendingAudit`). Each step is a module of its own. A step is a
 * stage (the write in, the write out) or a guard, which runs every later step and persist inside it: the
 * journal's intent, the exclusion lock, the pseudonymisation's vault rehearsal. Every step is required:
 * none of the safety steps can be left out by forgetting to pass it.
 */
export interface IngestPipeline {
  /** Runs the write through every step; returns what persist produced. Throws a FhirError on refusal. */
  run(write: Write, ctx: IngestContext): Promise<PersistOutcome>;
  /**
   * Runs only the validation steps ($validate) and returns every issue of every step, with the
   * validator's severities. A delete is checked by the step a delete meets before the store: authorise.
   */
  validate(
    write: Write,
    ctx: IngestContext,
    options?: Omit<CheckOptions, 'purpose'>,
  ): Promise<OperationOutcomeIssue[]>;
}

type Step = { name: string; stage: IngestStage } | { name: string; guard: WriteGuard };

/**
 * A step after persist, inside every guard (the write's journal intent, the persons' locks): what the
 * stored write sets off in the registry's own workings. It sees what was stored; if it fails, the write is
 * stored and its intent stays open, so recovery runs the step again (src/ingest/recovery.ts).
 */
export interface PersistedStep {
  /** Started as the write is sent: look-ups whose answer the write cannot change, so that they overlap
   * the store's round trip instead of following it (the step checks that what was stored matches). */
  ahead?(write: Write): void;
  run(write: Write, outcome: PersistOutcome, ctx: IngestContext): Promise<void>;
}

export interface IngestDeps {
  store: FhirStore;
  /** Conditional references resolved, literal ones required to exist (src/ingest/references.ts). */
  references: ReferenceResolution;
  /** Who gave a portal response: only the person (src/ingest/authorise.ts). */
  respondent: IngestStage;
  /** Inclusion criteria (src/consent/inclusion.ts): participating unit, age at episode start. */
  inclusion: IngestStage;
  /** The write journal: every write's intent is recorded before it reaches the store (src/ingest/journal.ts). */
  journal: WriteJournal;
  /** The exclusion guard (src/ingest/exclude.ts): refuses writes about reserved persons, and holds the
   * person lock from its check through pseudonymise and persist. */
  exclude: WriteGuard;
  /** The pseudonymise guard (src/ingest/pseudonymise.ts), built with the identity vault: the vault keeps a
   * write's changes only if it is persisted. */
  pseudonymise: WriteGuard;
  /** Whose data a write touches, and the unit labels (src/ingest/authorise.ts). */
  ownership: IngestStage;
  /** Builds (and checks) a write's audit entry before it is sent; recovery records it if the request's own
   * entry is missing. Throwing refuses the write before anything is stored. */
  pendingAudit: (write: Write, ctx: IngestContext, targets: IntentTarget[]) => AuditEvent;
  /** An answer's basedOn follow-up Task (src/followup/answers.ts): noted as sent (`read`), then, once the
   * person is known, it must be theirs, for that Questionnaire, open when the answer was authored (`check`). */
  answeredTasks: { read: IngestStage; check: IngestStage };
  /** Follow-up scheduling and closing (src/followup/ingestStep.ts): Tasks for stored episodes, answers
   * completing them. */
  followUp: PersistedStep;
}

export function createIngestPipeline(deps: IngestDeps): IngestPipeline {
  // Questionnaire look-ups are cached (a store search per response otherwise); writes of Questionnaires
  // through this pipeline invalidate the cache below.
  const questionnaires = cachedQuestionnaireSource(storeQuestionnaireSource(deps.store));
  const registry = new QuestionnaireRegistry(questionnaires);
  // Checks report every issue ($validate) or refuse on errors (a write); stages refuse on the first.
  const validation: ({ name: string; stage: IngestStage } | { name: string; check: IngestCheck })[] = [
    { name: 'accepted types', stage: acceptedTypesStage }, // the resource types of the data dictionary
    { name: 'repeated answers', stage: repeatedAnswersStage(registry) }, // Refero «Legg til» → one item
    { name: 'base validation', check: checkBase },
    { name: 'profiles as received', check: checkProfilesAsReceived }, // NorPain profiles
    { name: 'questionnaire', check: questionnaireCheck(registry) }, // QR vs its Questionnaire; scores
    { name: 'research approval', check: approvalCheck(questionnaires) }, // variables from the dictionary
  ];
  const steps: Step[] = [
    { name: 'authorise', stage: authoriseWrite },
    { name: 'canonical references', stage: canonicaliseReferences }, // canonical form, or 422 saying why
    { name: 'conditional references', stage: deps.references.resolveConditional }, // in the caller's view
    { name: 'answered task', stage: deps.answeredTasks.read }, // basedOn a follow-up Task, before it is dropped
    { name: 'respondent', stage: deps.respondent }, // a portal response's author and source: the person
    ...validation.map((step) => ('check' in step ? { name: step.name, stage: refusing(step.check) } : step)),
    { name: 'inclusion', stage: deps.inclusion },
    { name: 'journal', guard: journalGuard(deps.journal) },
    { name: 'exclude', guard: deps.exclude }, // reserved persons: 403, under the person lock
    // After exclusion, so that a reference to an erased person's Patient gets its 403 there; as sent,
    // before persons are linked.
    { name: 'patient references', stage: deps.references.requirePatients },
    { name: 'pseudonymise', guard: deps.pseudonymise }, // national id → registry pseudonym; the dictionary
    // After the data dictionary: a reference in an element it drops is dropped, not refused.
    { name: 'stored references', stage: deps.references.requireTargets },
    { name: 'pseudonymised profiles', stage: validatePseudonymisedProfiles }, // what is stored holds too
    { name: 'ownership', stage: deps.ownership }, // own unit / own person; unit labels
    { name: 'answered task check', stage: deps.answeredTasks.check }, // that Task is the person's own
  ];
  const afterPersist: { name: string; step: PersistedStep }[] = [
    { name: 'follow-up', step: deps.followUp }, // schedule Tasks for episodes; answers complete them
  ];
  const persist = async (write: Write, ctx: IngestContext): Promise<PersistOutcome> => {
    for (const { step } of afterPersist) step.ahead?.(write);
    const outcome = await persistWrite(deps.store, write, {
      intent: ctx.intent,
      audit: (w, targets) => deps.pendingAudit(w, ctx, targets),
    });
    for (const { step } of afterPersist) {
      await step.run(write, outcome, ctx);
    }
    return outcome;
  };
  const runFrom = async (index: number, write: Write, ctx: IngestContext): Promise<PersistOutcome> => {
    const step = steps[index];
    if (step === undefined) {
      return persist(write, ctx);
    }
    if ('guard' in step) {
      return step.guard.guard(write, ctx, (next, nextCtx) => runFrom(index + 1, next, nextCtx));
    }
    return runFrom(index + 1, await step.stage(write, ctx), ctx);
  };
  return {
    async run(write, ctx) {
      try {
        return await runFrom(0, write, ctx);
      } finally {
        // Also when persisting failed: a transaction may have failed after HAPI committed it.
        if (touchesQuestionnaire(write)) questionnaires.invalidate();
      }
    },
    async validate(write, ctx, options = {}) {
      const checkOptions: CheckOptions = { ...options, purpose: 'validate' };
      const deleting = write.entries.some((entry) => entry.method === 'DELETE');
      const checks: IngestCheck[] = (
        deleting ? [{ stage: authoriseWrite }] : [{ stage: canonicaliseReferences }, ...validation]
      ).map((step) => ('check' in step ? step.check : asCheck(step.stage)));
      const issues: OperationOutcomeIssue[] = [];
      let current = write;
      // Every step runs, each on what the last one that passed left, so one answer lists all problems; a
      // step's refusal (any client error) is reported with the rest.
      for (const check of checks) {
        try {
          const checked = await check(current, ctx, checkOptions);
          issues.push(...checked.issues);
          current = checked.write;
        } catch (err) {
          if (!isFhirError(err) || err.status >= 500) throw err;
          issues.push(...(err.outcome.issue ?? []));
        }
      }
      return issues;
    },
  };
}

/** A stage as a check that finds nothing to report unless it refuses. */
function asCheck(stage: IngestStage): IngestCheck {
  return async (write, ctx) => ({ write: await stage(write, ctx), issues: [] });
}

/**
 * The write's intent in the journal, around the steps that may store it. Closed once the request's audit
 * entry is recorded (by the router), or now if nobody audits. A write that was stored, or whose outcome
 * is unknown, stays open for recovery to complete (vault links, audit entry); any other failure stored
 * nothing and closes it.
 */
function journalGuard(journal: WriteJournal): WriteGuard {
  return {
    async guard(write, ctx, proceed) {
      const intent = journal.begin(ctx.requestId, write.transaction);
      try {
        const outcome = await proceed(write, { ...ctx, intent });
        if (ctx.intents) ctx.intents.add(intent);
        else await intent.close();
        return outcome;
      } catch (err) {
        if (intent.stored || isUnresolvedWrite(err)) intent.release();
        else await intent.close();
        throw err;
      }
    },
  };
}
