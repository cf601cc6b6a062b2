import type { Env } from '../config/secrets';
import type { FollowUpCancellers } from '../consent/followUps';
import type { PersonLockService } from '../consent/personLock';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import type { PersistedStep } from '../ingest/pipeline';
import type { IngestStage } from '../ingest/write';
import type { LandedTarget } from '../ingest/recovery';
import { describeError, type Logger } from '../logging/logger';
import type { StateServices } from '../state';
import type { FhirStore } from '../store/FhirStore';
import { storeQuestionnaireSource } from '../validation/questionnaire';
import { AmqpChannel } from './amqp';
import { loadAmqpSettings } from './amqpConfig';
import { AnswerCloser, checkAnsweredTask, readAnsweredTask } from './answers';
import type { Channel } from './channel';
import { Dispatcher, type DispatchReport } from './dispatcher';
import { followUpRecovery, followUpStep } from './ingestStep';
import { StateDispatchLedger, type DispatchLedger } from './ledger';
import { OutboxChannel } from './outbox';
import { FollowUpScheduler } from './schedule';
import { loadFollowUpSettings, type FollowUpSettings } from './settings';

/**
 * The follow-up (DESIGN §9, docs/followup.md), assembled for the server or the `norpain dispatch` command:
 * the scheduler behind the ingest pipeline's follow-up step, the dispatcher with its ledger and channel,
 * and the canceller a reservation calls.
 */
export interface FollowUpServices {
  settings: FollowUpSettings;
  ledger: DispatchLedger;
  channel: Channel;
  scheduler: FollowUpScheduler;
  dispatcher: Dispatcher;
  /** The ingest pipeline's stages for an answer's basedOn Task: noted as sent, then checked. */
  answeredTasks: { read: IngestStage; check: IngestStage };
  /** The ingest pipeline's step after persist. */
  step: PersistedStep;
  /** The same, for writes recovery completes. */
  recovered: (landed: LandedTarget[]) => Promise<void>;
  close(): Promise<void>;
}

export interface FollowUpOptions {
  env: Env;
  dataDir: string;
  production: boolean;
  store: FhirStore;
  vault: IdentityVault;
  /** Where the ledger is kept (shared by the replicas on PostgreSQL) and the dispatchers' Task locks. */
  state: StateServices;
  locks: PersonLockService;
  /** Where reservations find the canceller; the CLI, which takes no reservations, passes none. */
  cancellers?: FollowUpCancellers;
  /** Who reads the vault to send (audited): `norpain-dispatch` in the server, `norpain-cli` in the command. */
  actor: string;
  /** The channel to send through; by default the one FOLLOWUP_CHANNEL names. */
  channel?: Channel;
}

export function openFollowUp(options: FollowUpOptions): FollowUpServices {
  const settings = loadFollowUpSettings(options.env, options);
  const ledger = StateDispatchLedger.open(options.state.config, options.dataDir);
  const channel = options.channel ?? openChannel(settings, options.env);
  const scheduler = new FollowUpScheduler({
    store: options.store,
    questionnaires: storeQuestionnaireSource(options.store),
    ledger,
    settings,
  });
  const dispatcher = new Dispatcher({
    store: options.store,
    vault: options.vault,
    ledger,
    channel,
    locks: options.locks,
    taskLocks: options.state.personLocks('dispatch'),
    settings,
    actor: options.actor,
  });
  const reactions = { scheduler, answers: new AnswerCloser(options.store, ledger) };
  // A reservation erases the person's Tasks; the ledger forgets their attempts, so none is sent again.
  options.cancellers?.register({
    cancelPendingFollowUps: async (patientId) => ledger.forgetPerson(patientId),
  });
  return {
    settings,
    ledger,
    channel,
    scheduler,
    dispatcher,
    answeredTasks: { read: readAnsweredTask, check: checkAnsweredTask(options.store) },
    step: followUpStep(reactions),
    recovered: followUpRecovery(options.store, reactions),
    close: async () => {
      await channel.close();
      ledger.close();
    },
  };
}

function openChannel(settings: FollowUpSettings, env: Env): Channel {
  switch (settings.channel) {
    case 'outbox':
      return new OutboxChannel(settings.outboxDir);
    case 'amqp':
      return new AmqpChannel(loadAmqpSettings(env));
  }
}

/**
 * The in-server dispatch (FOLLOWUP_DISPATCH_SECONDS; off when 0): a run at start, then one at a time, the
 * next one the interval after the last ended. Returns the function that stops it (waiting for a run under way).
 */
export function startDispatchTimer(
  dispatcher: Dispatcher,
  seconds: number,
  logger: Logger,
  now: () => Date = () => new Date(),
): () => Promise<void> {
  if (seconds === 0) return async () => undefined;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    running = dispatcher
      .run(now())
      .then((report: DispatchReport) => {
        if (Object.values(report).some((n) => n > 0)) logger.info('follow-up dispatched', { ...report });
      })
      .catch((err: unknown) =>
        logger.warn('follow-up dispatch failed; it runs again later', describeError(err)),
      )
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(tick, seconds * 1000);
          timer.unref();
        }
      });
  };
  // The first run right away: it also delivers again what a crash left unconfirmed.
  timer = setTimeout(tick, 0);
  timer.unref();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
