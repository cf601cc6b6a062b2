import type { ResourceType } from '@medplum/fhirtypes';
import type { Logger } from '../logging/logger';
import { describeError } from '../logging/logger';
import type { ExportFiles } from './files';
import type { ExportJob, JobStore } from './jobs';
import type { ExportSource } from './source';

/**
 * Runs export jobs in the background of the server process: each job streams its source type by type
 * into NDJSON files (files.ts), records its progress, and ends completed (files published) or failed
 * (files removed). A cancelled job (on any replica) stops soon after and leaves nothing behind. Jobs do
 * not survive their process: one whose runner has stopped is failed, its partial files removed.
 */
export interface ExportEngine {
  /** Starts a job already recorded in the job store. */
  start(job: ExportJob, source: ExportSource, onEnd?: (job: ExportJob) => Promise<void>): void;
  /** Stops a running job (if it runs) and waits until it has stopped writing. */
  cancel(jobId: string): Promise<void>;
  /** Cancels every running job (server shutdown). */
  stop(): Promise<void>;
  /** Fails the jobs whose runner has stopped (a restart, a replica gone): they cannot resume. */
  failOrphans(): Promise<void>;
}

export interface EngineOptions {
  jobs: JobStore;
  files: ExportFiles;
  logger: Logger;
  /** How long files are kept after a job ends. */
  ttlMs: number;
  /** A file is split before it would grow past this size. */
  maxFileBytes: number;
  /** Whether the process that ran a job has stopped (StateServices.gone); undefined: recorded before runners. */
  gone(runner: string | undefined): Promise<boolean>;
}

/** How often progress is written to the job store (each write is a synced commit). */
const PROGRESS_EVERY_MS = 500;

export function createExportEngine(options: EngineOptions): ExportEngine {
  const { jobs, files, logger } = options;
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>();

  const run = async (job: ExportJob, source: ExportSource, abort: AbortController): Promise<void> => {
    const signal = abort.signal;
    const writer = files.writer(job.id, options.maxFileBytes);
    let written = 0;
    let reported = Date.now();
    try {
      for (const [index, type] of job.types.entries()) {
        for await (const resource of source.stream(type as ResourceType, {
          since: job.since,
          group: job.groupId,
        })) {
          if (signal.aborted) break;
          await writer.write(type, resource);
          written += 1;
          if (Date.now() - reported >= PROGRESS_EVERY_MS) {
            // Cancelled on another replica: stop here as a cancel on this one would.
            if (!jobs.progress(job.id, written, index)) abort.abort();
            reported = Date.now();
          }
        }
        if (signal.aborted) break;
        if (!jobs.progress(job.id, written, index + 1)) abort.abort();
      }
      if (signal.aborted) {
        writer.abort();
        files.remove(job.id);
        return;
      }
      const output = await writer.finish();
      files.publish(job.id);
      if (!jobs.finish(job.id, { status: 'completed', output }, expiry(options.ttlMs))) {
        files.remove(job.id); // cancelled between the last resource and now
      }
    } catch (err) {
      writer.abort();
      files.remove(job.id);
      logger.error('export job failed', { job: job.id, ...describeError(err) });
      jobs.finish(
        job.id,
        {
          status: 'failed',
          error: 'The export failed on the server; start it again, or ask the registry if it keeps failing.',
        },
        expiry(options.ttlMs),
      );
    }
  };

  return {
    start(job, source, onEnd) {
      const abort = new AbortController();
      const done = run(job, source, abort)
        .then(async () => {
          const ended = jobs.get(job.id);
          if (ended !== undefined && ended.status !== 'in-progress') await onEnd?.(ended);
        })
        .catch((err: unknown) =>
          logger.error('export job end not recorded', { job: job.id, ...describeError(err) }),
        )
        .finally(() => running.delete(job.id));
      running.set(job.id, { abort, done });
    },
    async cancel(jobId) {
      const job = running.get(jobId);
      if (job !== undefined) {
        job.abort.abort();
        await job.done;
      }
      files.remove(jobId);
    },
    async stop() {
      await Promise.all([...running.keys()].map((id) => this.cancel(id)));
    },
    async failOrphans() {
      for (const job of jobs.unfinished()) {
        if (!(await options.gone(job.runner))) continue;
        files.remove(job.id);
        jobs.finish(
          job.id,
          { status: 'failed', error: 'The server restarted while the export ran; start the export again.' },
          expiry(options.ttlMs),
        );
      }
    },
  };
}

function expiry(ttlMs: number): string {
  return new Date(Date.now() + ttlMs).toISOString();
}
