import { randomUUID } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { Bundle, Parameters, Resource } from '@medplum/fhirtypes';
import type { AuthRequest } from '../auth/authenticator';
import { authoriseRequest } from '../auth/matrix';
import type { Principal } from '../auth/principal';
import { filterResponseBundle, viewStore, type View } from '../auth/view';
import { RequestIntents } from '../ingest/journal';
import type { IngestPipeline } from '../ingest/pipeline';
import type { FhirStore } from '../store/FhirStore';
import type { RequestAuditor } from './audit';
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
  authenticate: (req: AuthRequest) => Promise<Principal>;
  /** What a principal may see (src/auth/view.ts); without it every principal sees the whole store. */
  view?: (principal: Principal) => View;
  /** Records one AuditEvent per request under /fhir except metadata (src/fhir/audit.ts). */
  audit?: RequestAuditor;
  /** Per-client rate limit, run after authentication (src/auth/hardening.ts). */
  rateLimit?: express.RequestHandler;
  /** Rate limit on failed authentications, run before authentication. */
  authFailureLimit?: express.RequestHandler;
  /** Most entries a batch or transaction Bundle may have. */
  maxBundleEntries?: number;
  /** Search parameters → what the store holds (src/identity/searchTranslation.ts). */
  translateSearch?: InteractionContext['translateSearch'];
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

  if (deps.authFailureLimit) {
    router.use(deps.authFailureLimit);
  }
  // Authenticate before reading a body, so that anonymous callers cannot make us buffer megabytes.
  router.use(async (req, res, next) => {
    res.locals.audited = true; // from here on, every answer (also a 401) is audited
    res.locals.principal = await deps.authenticate({
      headers: req.headers,
      method: req.method,
      url: `${baseUrl(deps, req)}${req.path}`,
    });
    next();
  });
  if (deps.rateLimit) {
    router.use(deps.rateLimit);
  }
  // Role and scope, before a body is read (src/auth/matrix.ts); batch entries are checked one by one.
  router.use((req, res, next) => {
    authoriseRequest(res.locals.principal as Principal, req.method, segmentsOf(req));
    next();
  });

  const readBody = express.raw({ type: () => true, limit: deps.maxBodyBytes });
  router.use((req, res, next) => (METHODS_WITH_BODY.has(req.method) ? readBody(req, res, next) : next()));

  router.use(async (req, res) => {
    const principal = res.locals.principal as Principal;
    const view = deps.view?.(principal);
    const intents = new RequestIntents();
    res.locals.intents = intents;
    const ctx: InteractionContext = {
      store: view ? viewStore(deps.store, view) : deps.store,
      ingest: deps.ingest,
      principal,
      requestId: requestId(res),
      base: baseUrl(deps, req),
      view,
      maxBundleEntries: deps.maxBundleEntries,
      translateSearch: deps.translateSearch,
      intents,
    };
    const response = await handle(ctx, req, deps.ingest, deps.operations ?? []);
    const bundleType = (response.body as Bundle | undefined)?.type;
    if (
      view &&
      response.body?.resourceType === 'Bundle' &&
      (bundleType === 'transaction-response' || bundleType === 'batch-response')
    ) {
      // What a transaction wrote or matched, shown only as far as the view allows (reads are already filtered).
      response.body = filterResponseBundle(response.body as Bundle, view);
    }
    await auditRequest(deps, req, res, response.status, response.body, response.headers.Location);
    // Only now is each write complete: stored, linked and audited (src/ingest/journal.ts).
    intents.closeAll();
    sendFhir(req, res, response);
  });

  router.use(async (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const fhirError = isFhirError(err) ? err : fromBodyParser(err);
    if (fhirError) {
      try {
        await auditRequest(deps, req, res, fhirError.status, undefined, undefined);
        intentsOf(res)?.closeAll();
      } catch (auditError) {
        intentsOf(res)?.releaseAll();
        next(auditError);
        return;
      }
      sendFhir(req, res, { status: fhirError.status, body: fhirError.outcome, headers: fhirError.headers });
      return;
    }
    // The audit log itself may be what failed: the request's writes keep their intents, whose audit
    // entries recovery records (src/ingest/recovery.ts).
    intentsOf(res)?.releaseAll();
    try {
      await auditRequest(deps, req, res, 500, undefined, undefined);
    } catch {
      // The failure is logged below.
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

function intentsOf(res: Response): RequestIntents | undefined {
  return res.locals.intents as RequestIntents | undefined;
}

/** The decoded path segments below the base (400 when the path is not validly encoded). */
function segmentsOf(req: Request): string[] {
  try {
    return req.path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw errors.badRequest('The URL is not validly encoded.');
  }
}

async function auditRequest(
  deps: FhirRouterDeps,
  req: Request,
  res: Response,
  status: number,
  body: Resource | undefined,
  location: string | undefined,
): Promise<void> {
  if (!deps.audit || res.locals.audited !== true) {
    return;
  }
  let segments: string[];
  try {
    segments = segmentsOf(req);
  } catch {
    segments = [];
  }
  await deps.audit({
    principal: res.locals.principal as Principal | undefined,
    method: req.method,
    segments,
    status,
    body,
    location,
    bundleType: segments.length === 0 ? bundleTypeOf(req) : undefined,
    requestId: requestId(res),
  });
}

/** The type of a Bundle posted to the base, read from the raw body without trusting it further. */
function bundleTypeOf(req: Request): string | undefined {
  if (!Buffer.isBuffer(req.body)) return undefined;
  try {
    const type = (JSON.parse(req.body.toString('utf8')) as { type?: unknown }).type;
    return typeof type === 'string' ? type : undefined;
  } catch {
    return undefined;
  }
}

async function handle(
  ctx: InteractionContext,
  req: Request,
  ingest: IngestPipeline,
  operations: CustomOperation[],
): Promise<FhirResponse> {
  const url = new URL(req.originalUrl, 'http://x');
  const segments = segmentsOf(req);
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
        transaction: false,
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
