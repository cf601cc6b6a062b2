import { randomUUID } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { Parameters, Resource } from '@medplum/fhirtypes';
import type { Principal } from '../auth/principal';
import type { IngestPipeline } from '../ingest/pipeline';
import type { FhirStore } from '../store/FhirStore';
import { processBundle } from './bundles';
import { buildCapabilityStatement } from './capability';
import { loadFhirDefinitions } from './definitions';
import {
  checkAcceptable,
  parseETag,
  readFormBody,
  readJsonBody,
  returnPreference,
  sendFhir,
  type FhirResponse,
} from './http';
import { perform, type Interaction, type InteractionContext } from './interactions';
import { errors, FhirError, isFhirError, issue, operationOutcome } from './outcomes';
import { isResourceTypeName } from './search';

export interface FhirRouterDeps {
  store: FhirStore;
  /** Establishes the caller from the request; throws a 401 FhirError. */
  authenticate: (req: express.Request) => Promise<Principal>;
  /** Bodies above this size get 413. */
  maxBodyBytes: number;
  ingest: IngestPipeline;
  /** The FHIR base as clients see it (e.g. https://norpain.example/fhir); else derived from the request. */
  publicBaseUrl?: string;
  /** Called for unexpected (500) errors, with no request body or identifiers. Default: stderr. */
  logError?: (event: UnexpectedError) => void;
  /** Software version for the CapabilityStatement. */
  version?: string;
  /** Endpoints beyond the RESTful interactions (reservations, Patient/$everything, $correct), asked in order. */
  operations?: CustomOperation[];
}

/** What a custom operation sees of the request. */
export interface OperationRequest {
  method: string;
  /** Path segments below the base, e.g. ["Patient", "$everything"]. */
  segments: string[];
  params: URLSearchParams;
  header(name: string): string | undefined;
  /** The decoded JSON body (415/400 FhirError when it is not one). */
  body(): unknown;
}

/** Answers a request it owns, or returns undefined to leave it to the RESTful interactions. */
export type CustomOperation = (
  ctx: InteractionContext,
  request: OperationRequest,
) => Promise<FhirResponse | undefined>;

/** What is logged about an unexpected error: where, and the error's class and stack frames (not its message,
 * which may quote data). */
export interface UnexpectedError {
  requestId: string;
  method: string;
  route: string;
  error: string;
  frames: string[];
}

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/** The FHIR REST API (DESIGN §6), mounted at /fhir by src/server.ts. */
export function createFhirRouter(deps: FhirRouterDeps): express.Router {
  loadFhirDefinitions();
  const capability = buildCapabilityStatement(deps.store.kind, deps.version ?? '0.0.0');
  const router = express.Router();
  const logError =
    deps.logError ?? ((event) => process.stderr.write(`${JSON.stringify({ level: 'error', ...event })}\n`));

  router.use((req, _res, next) => {
    checkAcceptable(req);
    next();
  });

  router.get('/metadata', (req, res) => {
    sendFhir(req, res, {
      status: 200,
      body: {
        ...capability,
        implementation: {
          description: capability.implementation?.description ?? '',
          url: baseUrl(deps, req),
        },
      },
      headers: {},
    });
  });
  router.all('/metadata', () => {
    throw errors.methodNotAllowed('metadata is read with GET.', ['GET']);
  });

  // Authenticate before reading a body, so that anonymous callers cannot make us buffer megabytes.
  router.use(async (req, res, next) => {
    res.locals.principal = await deps.authenticate(req);
    next();
  });

  const readBody = express.raw({ type: () => true, limit: deps.maxBodyBytes });
  router.use((req, res, next) => (METHODS_WITH_BODY.has(req.method) ? readBody(req, res, next) : next()));

  router.use(async (req, res) => {
    const ctx: InteractionContext = {
      store: deps.store,
      ingest: deps.ingest,
      principal: res.locals.principal as Principal,
      requestId: requestId(res),
      base: baseUrl(deps, req),
    };
    sendFhir(req, res, await handle(ctx, req, deps.ingest, deps.operations ?? []));
  });

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const fhirError = isFhirError(err) ? err : fromBodyParser(err);
    if (fhirError) {
      sendFhir(req, res, { status: fhirError.status, body: fhirError.outcome, headers: fhirError.headers });
      return;
    }
    logError({
      requestId: requestId(res),
      method: req.method,
      route: routeOf(req),
      error: err instanceof Error ? err.name : typeof err,
      frames:
        err instanceof Error
          ? (err.stack ?? '')
              .split('\n')
              .slice(1, 8)
              .map((line) => line.trim())
          : [],
    });
    sendFhir(req, res, {
      status: 500,
      body: operationOutcome([issue('exception', 'An internal error occurred; it has been logged.')]),
      headers: {},
    });
  });
  return router;
}

async function handle(
  ctx: InteractionContext,
  req: Request,
  ingest: IngestPipeline,
  operations: CustomOperation[],
): Promise<FhirResponse> {
  const url = new URL(req.originalUrl, 'http://x');
  let segments: string[];
  try {
    segments = req.path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw errors.badRequest('The URL is not validly encoded.');
  }
  const prefer = returnPreference(req.get('prefer'));
  const request: OperationRequest = {
    method: req.method,
    segments,
    params: url.searchParams,
    header: (name) => req.get(name),
    body: () => readJsonBody(req),
  };
  for (const operation of operations) {
    const response = await operation(ctx, request);
    if (response) {
      return response;
    }
  }

  if (segments.length === 0) {
    if (req.method !== 'POST') {
      throw errors.methodNotAllowed('POST a batch or transaction Bundle to the base.', ['POST']);
    }
    return processBundle(ctx, readJsonBody(req), prefer);
  }

  if (segments.length === 2 && segments[1] === '$validate' && isResourceTypeName(segments[0])) {
    if (req.method !== 'POST') {
      throw errors.methodNotAllowed('$validate takes the resource by POST.', ['POST']);
    }
    return validateOperation(ctx, ingest, segments[0], readJsonBody(req));
  }

  const interaction: Interaction = {
    method: req.method,
    segments,
    params: url.searchParams,
    prefer,
    ifMatch: req.get('if-match') !== undefined ? parseETag(req.get('if-match') ?? '', 'If-Match') : undefined,
    ifNoneExist: conditionalQuery(req.get('if-none-exist')),
  };
  if (segments.length === 2 && segments[1] === '_search' && req.method === 'POST') {
    const params = new URLSearchParams(url.searchParams);
    readFormBody(req).forEach((value, key) => params.append(key, value));
    interaction.params = params;
  } else if (req.method === 'POST' || req.method === 'PUT') {
    interaction.body = readJsonBody(req);
  }
  return perform(ctx, interaction);
}

/** `If-None-Exist: identifier=sys|val` (tolerating a leading `?` or `Type?`). */
function conditionalQuery(header: string | undefined): string | undefined {
  if (header === undefined) {
    return undefined;
  }
  const query = header.includes('?') ? header.slice(header.indexOf('?') + 1) : header;
  if (query.trim() === '') {
    throw errors.badRequest('If-None-Exist must carry a search query such as identifier=system|value.');
  }
  return query.trim();
}

/** `POST Type/$validate` with the resource, or a Parameters whose `resource` parameter holds it. */
async function validateOperation(
  ctx: InteractionContext,
  ingest: IngestPipeline,
  type: string,
  body: unknown,
): Promise<FhirResponse> {
  const resource =
    (body as Resource).resourceType === 'Parameters' && type !== 'Parameters'
      ? (body as Parameters).parameter?.find((p) => p.name === 'resource')?.resource
      : (body as Resource);
  if (!resource) {
    throw errors.badRequest('$validate needs the resource, directly or as the "resource" parameter.');
  }
  try {
    await ingest.validate(
      {
        atomic: true,
        entries: [{ method: 'POST', resourceType: type as Resource['resourceType'], resource }],
      },
      { principal: ctx.principal, requestId: ctx.requestId },
    );
  } catch (err) {
    if (isFhirError(err) && (err.status === 422 || err.status === 400)) {
      return { status: 200, body: err.outcome, headers: {} };
    }
    throw err;
  }
  return {
    status: 200,
    body: operationOutcome([issue('informational', 'The resource is valid.', undefined, 'information')]),
    headers: {},
  };
}

/** Maps body-parser errors (size limit, encoding, aborted) to FHIR errors. */
function fromBodyParser(err: unknown): FhirError | undefined {
  const type = (err as { type?: unknown } | null)?.type;
  switch (type) {
    case 'entity.too.large':
      return errors.payloadTooLarge('The request body exceeds the maximum size this server accepts.');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return errors.unsupportedMediaType('The request body encoding is not supported; send UTF-8.');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return errors.badRequest('The request body could not be read completely.');
    default:
      return undefined;
  }
}

function baseUrl(deps: FhirRouterDeps, req: Request): string {
  if (deps.publicBaseUrl) {
    return deps.publicBaseUrl.replace(/\/+$/, '');
  }
  return `${req.protocol}://${req.get('host') ?? 'localhost'}${req.baseUrl}`;
}

function requestId(res: Response): string {
  const existing = res.locals.requestId as unknown;
  if (typeof existing === 'string') {
    return existing;
  }
  const created = randomUUID();
  res.locals.requestId = created;
  return created;
}

/** The path shape without ids, for logs: /fhir/Patient/:id/_history/:vid. */
function routeOf(req: Request): string {
  const [type, ...rest] = req.path.split('/').filter(Boolean);
  const shape = rest.map((segment) => (segment.startsWith('_') || segment.startsWith('$') ? segment : ':id'));
  return [req.baseUrl, type, ...shape].filter((part) => part !== undefined && part !== '').join('/');
}
