import { isFhirError } from './fhir/outcomes';
import { describeError, type Logger } from './logging/logger';

/** How often the server tries again while the store is unreachable at start-up. */
const START_RETRY_MS = 2_000;
/** How often unfinished work (writes whose answer was lost, interrupted erasures) is looked for. */
const BACKGROUND_MS = 30_000;

export interface Maintenance {
  /** Settles after the first attempt: rejects on a fault other than an unreachable store. */
  first: Promise<void>;
  /** Whether start-up work has run; until then /readyz and writes answer 503. */
  ready(): boolean;
  stop(): Promise<void>;
}

/**
 * Start-up work that needs the clinical store (units, questionnaires, then recovery of what a crash left
 * unfinished), retried while the store is unreachable, so the server starts and answers 503 instead of
 * failing; once it has run, recovery runs again in the background for writes whose outcome a lost answer
 * left open and for erasures a store outage interrupted.
 */
export function startMaintenance(work: {
  logger: Logger;
  startUp: () => Promise<void>;
  recover: () => Promise<void>;
}): Maintenance {
  let isReady = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const schedule = (ms: number, task: () => Promise<void>): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = task();
    }, ms);
    timer.unref();
  };
  const background = async (): Promise<void> => {
    try {
      await work.recover();
    } catch (err) {
      work.logger.warn('background recovery failed; it runs again later', describeError(err));
    }
    schedule(BACKGROUND_MS, background);
  };
  const attempt = async (): Promise<void> => {
    try {
      await work.startUp();
      await work.recover();
    } catch (err) {
      if (!(isFhirError(err) && err.status === 503)) {
        throw err;
      }
      work.logger.warn('the FHIR store is not reachable; the server answers 503 until it is', {
        retryInMs: START_RETRY_MS,
      });
      schedule(START_RETRY_MS, () => attempt().catch((e: unknown) => onFatal(e)));
      return;
    }
    isReady = true;
    work.logger.info('ready');
    schedule(BACKGROUND_MS, background);
  };
  const onFatal = (err: unknown): void => {
    // After the first attempt nobody awaits: the fault is logged and the server stays unready.
    work.logger.error('start-up work failed; the server stays unready', describeError(err));
  };
  const first = attempt();
  running = first.catch(() => undefined);
  return {
    first,
    ready: () => isReady,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => undefined);
    },
  };
}
