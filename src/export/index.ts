import { buildAuditEvent, type AuditSink } from '../audit/auditEvent';
import type { Principal } from '../auth/principal';
import type { ExportConfig } from '../config';
import type { OperationRow } from '../fhir/classify';
import type { StateServices } from '../state';
import type { InteractionContext } from '../fhir/interactions';
import { describeError, type Logger } from '../logging/logger';
import { createExportEngine } from './engine';
import { ExportFiles } from './files';
import { StateJobStore, type ExportJob } from './jobs';
import { exportOperations, studyOfOwner } from './operations';
import type { ProjectPseudonyms } from '../research/pseudonyms';
import type { ExportSource } from './source';

export { registrySource, studySource, type ExportSource } from './source';

/**
 * Bulk Data export (DESIGN §6, issue 13): the job store, the engine, the HTTP operations and the sweeper
 * that deletes files once they expire. What is exported is the caller's view (`sourceFor`); every request
 * is audited by the router, and what happens outside a request (a job ending, files expiring) here.
 */
export interface ExportServices {
  operations: OperationRow[];
  /** Deletes what has expired now (the sweeper runs it on a timer too). */
  sweep(): Promise<void>;
  /**
   * A person was erased (a reservation): every export still running, and every finished one whose files
   * hold them — by Patient id and pseudonym, in a study's export by the Patient's project id — is
   * withdrawn as a cancel would, and its files deleted; its owner's next poll gets 404. Returns how many.
   */
  withdrawHolding(person: { patientId: string; pseudonym: string }): Promise<number>;
  close(): Promise<void>;
}

export interface ExportDeps {
  dataDir: string;
  config: ExportConfig;
  audit: AuditSink;
  logger: Logger;
  sourceFor(ctx: InteractionContext, transactionTime: string): Promise<ExportSource>;
  /** The instant an export kicked off now reads up to (its manifest's `transactionTime`): at or after the
   * `lastUpdated` of everything already written, which the Bulk Data IG says it SHALL include. */
  transactionTime(): string;
  /** Where the jobs are kept (shared by the replicas on PostgreSQL), and who runs them. */
  state: StateServices;
  /** How a study's export names a person (withdrawHolding). */
  projectPseudonyms: ProjectPseudonyms;
}

/** Who did what outside a request, in the audit log. */
const ACTOR = 'norpain-export';

export function openExport(deps: ExportDeps): ExportServices {
  const jobs = StateJobStore.open(deps.state.config, deps.dataDir, deps.state.instance);
  const files = new ExportFiles(deps.config.dir);
  const ttlMs = deps.config.ttlSeconds * 1000;
  const engine = createExportEngine({
    jobs,
    files,
    logger: deps.logger,
    ttlMs,
    maxFileBytes: deps.config.maxFileBytes,
    gone: (runner) => deps.state.gone(runner),
  });

  const onEnd = async (job: ExportJob, principal: Principal): Promise<void> => {
    const persons = job.output.filter((f) => f.type === 'Patient').reduce((sum, f) => sum + f.count, 0);
    await deps.audit.record(
      buildAuditEvent({
        principal,
        interaction: 'operation',
        operation: job.status === 'completed' ? '$export-complete' : '$export-failed',
        resources: job.types,
        personCount: job.status === 'completed' && job.types.includes('Patient') ? persons : undefined,
        outcome: job.status === 'completed' ? '0' : '8',
        requestId: job.requestId,
      }),
    );
  };

  const sweep = async (): Promise<void> => {
    await engine.failOrphans();
    for (const job of jobs.expired(new Date().toISOString())) {
      files.remove(job.id);
      jobs.remove(job.id);
      await deps.audit.record(
        buildAuditEvent({
          actor: ACTOR,
          interaction: 'operation',
          operation: '$export-expire',
          resources: job.types,
          outcome: '0',
          requestId: job.requestId,
        }),
      );
    }
    // Folders no job names any more (a crash between removing the files and the record). A job's record
    // is written before its folder, so a folder another replica is starting has one.
    for (const id of files.jobsOnDisk()) {
      if (jobs.get(id) === undefined) files.remove(id);
    }
  };

  const withdrawHolding = async (person: { patientId: string; pseudonym: string }): Promise<number> => {
    let withdrawn = 0;
    for (const id of files.jobsOnDisk()) {
      const job = jobs.get(id);
      const study = job === undefined ? undefined : studyOfOwner(job.owner);
      const texts = [person.patientId, person.pseudonym];
      if (study !== undefined) {
        texts.push(deps.projectPseudonyms.forStudy(study).id('Patient', person.patientId));
      }
      // A running job may hold the person in what it has read and not yet written (the page of the store
      // it is at, the chunk its file is given next): its files cannot tell, so it goes whatever they hold.
      const running = job?.status === 'in-progress';
      if (!running && !(await files.holds(id, texts))) continue;
      await engine.cancel(id); // stops it if it runs here, and deletes its files
      withdrawn++;
      if (job === undefined) continue;
      jobs.remove(id);
      await deps.audit.record(
        buildAuditEvent({
          actor: ACTOR,
          interaction: 'operation',
          operation: '$export-withdraw',
          resources: job.types,
          outcome: '0',
          requestId: job.requestId,
        }),
      );
    }
    return withdrawn;
  };

  // Often enough that files outlive their expiry by at most a minute (or half the lifetime, if shorter).
  const timer = setInterval(
    () => {
      sweep().catch((err: unknown) => deps.logger.error('export sweep failed', describeError(err)));
    },
    Math.max(250, Math.min(60_000, ttlMs / 2)),
  );
  timer.unref();
  // Right away too: jobs a stopped server (or replica) left in progress are failed.
  sweep().catch((err: unknown) => deps.logger.error('export sweep failed', describeError(err)));

  return {
    operations: exportOperations({
      jobs,
      files,
      engine,
      sourceFor: deps.sourceFor,
      transactionTime: deps.transactionTime,
      onEnd,
    }),
    sweep,
    withdrawHolding,
    close: async () => {
      clearInterval(timer);
      await engine.stop();
      jobs.close();
    },
  };
}
