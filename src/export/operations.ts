import type { Principal } from '../auth/principal';
import type { OperationRequest, OperationRow } from '../fhir/classify';
import type { FhirResponse } from '../fhir/http';
import type { InteractionContext } from '../fhir/interactions';
import { errors, issue, operationOutcome } from '../fhir/outcomes';
import { newServerId } from '../identity/serverId';
import type { ExportEngine } from './engine';
import type { ExportFiles } from './files';
import type { ExportJob, JobStore } from './jobs';
import { parseKickOff } from './kickoff';
import type { ExportSource } from './source';

/**
 * The Bulk Data Access IG v2 endpoints as rows of the operation table (src/fhir/classify.ts), so that
 * authentication, rate limits, the matrix and the audit of every step (kick-off, poll, download, cancel)
 * are the router's as for any request:
 *
 *   GET    /fhir/$export, /fhir/Patient/$export, /fhir/Group/{id}/$export      kick-off → 202 + Content-Location
 *   GET    /fhir/$export-poll-status?_jobId=…                                  202 + X-Progress, then the manifest
 *   DELETE /fhir/$export-poll-status?_jobId=…                                  cancel: 202, files deleted
 *   GET    /fhir/$export-file?_jobId=…&file=Patient-1.ndjson                   one NDJSON file, streamed
 *
 * A job belongs to the principal that started it (ownerOf): to any other token, even of the same study,
 * it answers 404 exactly as a job that does not exist.
 */
export interface ExportOperationDeps {
  jobs: JobStore;
  files: ExportFiles;
  engine: ExportEngine;
  /** The export source of the caller's view at this instant (a 403 FhirError when it has none). */
  sourceFor(ctx: InteractionContext, transactionTime: string): Promise<ExportSource>;
  /** The instant a job kicked off now reads up to (see ExportDeps). */
  transactionTime(): string;
  /** Called when a job ends, to audit it. */
  onEnd(job: ExportJob, principal: Principal): Promise<void>;
}

const ROLES: OperationRow['roles'] = ['registry-admin', 'researcher'];
const RETRY_AFTER_SECONDS = 2;

/** The owner of a job: the same client, acting for the same person, unit and study. */
function ownerOf(principal: Principal): string {
  return JSON.stringify([
    principal.role,
    principal.clientId,
    principal.study ?? '',
    principal.hpr ?? '',
    principal.organization ?? '',
  ]);
}

/** The study a job's owner exported the view of (a researcher's), if any. */
export function studyOfOwner(owner: string): string | undefined {
  const study = (JSON.parse(owner) as string[])[2];
  return study === '' ? undefined : study;
}

export function exportOperations(deps: ExportOperationDeps): OperationRow[] {
  const statusUrl = (base: string, id: string) => `${base}/$export-poll-status?_jobId=${id}`;
  /** The caller's job named by `_jobId`, or the 404 a stranger's or unknown job gets. */
  const ownJob = (ctx: InteractionContext, request: OperationRequest): ExportJob => {
    const id = request.params.get('_jobId') ?? '';
    const job = /^[0-9a-f-]{36}$/.test(id) ? deps.jobs.get(id) : undefined;
    if (
      job === undefined ||
      job.owner !== ownerOf(ctx.principal) ||
      (job.expiresAt !== undefined && job.expiresAt <= new Date().toISOString())
    ) {
      throw errors.notFound(
        'No export job with this id is visible to this token. It may have expired, been cancelled, or been withdrawn because a person reserved themselves (a reservation withdraws the exports that hold the person, and any export still running); start the export again.',
      );
    }
    return job;
  };

  const kickOff: OperationRow = {
    name: '$export',
    levels: ['system', 'type', 'instance'],
    types: ['Patient', 'Group'],
    methods: ['GET'],
    roles: ROLES,
    permission: 'r',
    handle: async (ctx, request) => {
      const { what } = request;
      // Only Patient/$export and Group/{id}/$export: the row's types and levels admit Group/$export and
      // Patient/{id}/$export too.
      if (
        (what.level === 'type' && what.type !== 'Patient') ||
        (what.level === 'instance' && what.type !== 'Group')
      ) {
        return undefined;
      }
      const groupId = what.level === 'instance' ? what.id : undefined;
      const transactionTime = deps.transactionTime();
      const source = await deps.sourceFor(ctx, transactionTime);
      if (groupId !== undefined && !source.hasGroup(groupId)) {
        throw errors.notFound('Group not found.');
      }
      const { types, since } = parseKickOff(request, ctx.principal, source.types);
      const path = [what.type, what.id, what.operation.name].filter((part) => part !== undefined).join('/');
      const query = request.params.toString();
      const job: ExportJob = {
        id: newServerId(),
        owner: ownerOf(ctx.principal),
        request: `${ctx.base}/${path}${query === '' ? '' : `?${query}`}`,
        requestId: ctx.requestId,
        level: what.level === 'system' ? 'system' : what.level === 'type' ? 'patient' : 'group',
        groupId,
        types,
        since,
        transactionTime,
        status: 'in-progress',
        written: 0,
        typesDone: 0,
        output: [],
        createdAt: transactionTime,
      };
      deps.jobs.create(job);
      const principal = ctx.principal;
      deps.engine.start(job, source, (ended) => deps.onEnd(ended, principal));
      return {
        status: 202,
        headers: { 'Content-Location': statusUrl(ctx.base, job.id) },
        body: operationOutcome([
          issue(
            'informational',
            'The export has started; poll the Content-Location for its status.',
            undefined,
            'information',
          ),
        ]),
      };
    },
  };

  const status: OperationRow = {
    name: '$export-poll-status',
    levels: ['system'],
    methods: ['GET', 'DELETE'],
    roles: ROLES,
    permission: 'r',
    handle: async (ctx, request): Promise<FhirResponse> => {
      const job = ownJob(ctx, request);
      if (request.what.method === 'DELETE') {
        await deps.engine.cancel(job.id);
        deps.jobs.remove(job.id);
        return {
          status: 202,
          headers: {},
          body: operationOutcome([
            issue(
              'informational',
              'The export was cancelled and its files deleted.',
              undefined,
              'information',
            ),
          ]),
        };
      }
      switch (job.status) {
        case 'in-progress':
          return {
            status: 202,
            headers: {
              'X-Progress': `${job.written} resources written; ${job.typesDone} of ${job.types.length} types done`,
              'Retry-After': String(RETRY_AFTER_SECONDS),
            },
          };
        case 'failed':
          return {
            status: 500,
            headers: {},
            body: operationOutcome([issue('exception', job.error ?? 'The export did not complete.')]),
          };
        case 'completed': {
          const fileUrl = (name: string) => `${ctx.base}/$export-file?_jobId=${job.id}&file=${name}`;
          return {
            status: 200,
            headers: job.expiresAt === undefined ? {} : { Expires: new Date(job.expiresAt).toUTCString() },
            content: {
              type: 'application/json',
              json: {
                transactionTime: job.transactionTime,
                request: job.request,
                requiresAccessToken: true,
                output: job.output.map((file) => ({
                  type: file.type,
                  url: fileUrl(file.name),
                  count: file.count,
                })),
                error: [],
              },
            },
          };
        }
      }
    },
  };

  const file: OperationRow = {
    name: '$export-file',
    levels: ['system'],
    methods: ['GET'],
    roles: ROLES,
    permission: 'r',
    accepts: ['application/fhir+ndjson', 'application/ndjson'],
    handle: async (ctx, request) => {
      const job = ownJob(ctx, request);
      const name = request.params.get('file') ?? '';
      const listed = job.status === 'completed' && job.output.some((f) => f.name === name);
      const path = listed ? deps.files.published(job.id, name) : undefined;
      if (path === undefined) {
        throw errors.notFound('No such file in this export.');
      }
      return { status: 200, headers: {}, content: { type: 'application/fhir+ndjson', file: path } };
    },
  };

  return [kickOff, status, file];
}
