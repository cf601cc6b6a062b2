import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { Resource } from '@medplum/fhirtypes';
import type { AuthRequest } from '../auth/authenticator';
import { authorise } from '../auth/matrix';
import type { Principal } from '../auth/principal';
import { presentResponse, viewStore, type View } from '../auth/view';
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
  serverOrigin,
  type FhirResponse,
} from './http';
import { classify, routeOf, type FhirInteraction, type FhirOperation } from './classify';
import { perform, type InteractionContext } from './interactions';
import { errors, fhirErrorOf, issue, operationOutcome, URL_NOT_ENCODED } from './outcomes';
import { checkQueryLimits } from './queryLimits';
import { validateOperation } from './validateOperation';
import { newServerId } from '../identity/serverId';
import { describeError, type LogFields } from '../logging/logger';
import { literalKeyOf } from './reference';

export interface FhirRouterDeps {
  store: FhirStore;
  /** Establishes the caller from the request; throws a 401 FhirError. */
  authenticate: (req: AuthRequest) => Promise<Principal>;
  /** What a principal may see (src/auth/view.ts); without it every principal sees the whole store. */
  view?: (principal: Principal) => View;
  /** A store of the principal's own that its reads go through instead of the view's (a researcher: its
   * study's view, src/research/store.ts), or undefined; may refuse the principal (403). */
  readerFor?: (principal: Principal) => Promise<FhirStore | undefined>;
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
  /** The FHIR base as clients see it (e.g. https://norpain.example/fhir); else the socket's own address. */
  publicBaseUrl?: string;
  /** Called for unexpected (500) errors, with no request body or identifiers. */
  logError: (event: UnexpectedError) => void;
  /** Software version for the CapabilityStatement. */
  version?: string;
  /** The operation table beyond $validate (src/fhir/classify.ts): `$name` operations and type handlers. */
  operations?: FhirOperation[];
}

/** What is logged about an unexpected error: the request it failed, and the error as describeError
 * (src/logging/logger.ts) gives it: its class, code and where it was thrown; not its message, which may
 * quote data, nor its stack. */
export interface UnexpectedError {
  requestId: string;
  method: string;
  route: string;
  error: LogFields;
}

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/** The FHIR REST API (DESIGN §6), mounted at /fhir by src/server.ts. */
export function createFhirRouter(deps: FhirRouterDeps): express.Router {
  loadFhirDefinitions();
  const capability = buildCapabilityStatement(deps.store.kind, deps.version ?? '0.0.0');
  const router = express.Router();

  const operations: FhirOperation[] = [validateOperation, ...(deps.operations ?? [])];
  // Classified once (src/fhir/classify.ts); the matrix, the handler, the audit and the log use this.
  router.use((req, res, next) => {
    const interaction = classify(req.method, segmentsOf(req), operations);
    checkAcceptable(req, interaction.kind === 'operation' ? interaction.operation.accepts : undefined);
    res.locals.interaction = interaction;
    res.locals.route = `${req.baseUrl}${routeOf(interaction)}`;
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
  router.use((_req, res, next) => {
    authorise(res.locals.principal as Principal, res.locals.interaction as FhirInteraction);
    next();
  });

  // No Content-Encoding (inflate: false → 415): a compressed body would bypass the size limit's intent,
  // and one that only claims to be compressed cannot be read.
  const readBody = express.raw({ type: () => true, limit: deps.maxBodyBytes, inflate: false });
  router.use((req, res, next) => (METHODS_WITH_BODY.has(req.method) ? readBody(req, res, next) : next()));

  router.use(async (req, res) => {
    const principal = res.locals.principal as Principal;
    const reader = await deps.readerFor?.(principal);
    const view = reader ? undefined : deps.view?.(principal);
    const intents = new RequestIntents();
    res.locals.intents = intents;
    const ctx: InteractionContext = {
      store: reader ?? (view ? viewStore(deps.store, view) : deps.store),
      ingest: deps.ingest,
      principal,
      requestId: requestId(res),
      base: baseUrl(deps, req),
      view,
      maxBundleEntries: deps.maxBundleEntries,
      translateSearch: deps.translateSearch,
      operations,
      intents,
    };
    const response = await handle(ctx, req, res);
    if (view) {
      // Every answer as this principal may see it: others' unit labels and what a transaction wrote
      // outside the view left out (reads and searches are already held to the view by its store).
      response.body = presentResponse(response.body, view);
    }
    await auditRequest(
      deps,
      req,
      res,
      response.status,
      response.body,
      response.headers.Location,
      response.auditPersons,
    );
    // Only now is each write complete: stored, linked and audited (src/ingest/journal.ts).
    await intents.closeAll();
    sendFhir(req, res, response);
  });

  router.use(async (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const fhirError = fhirErrorOf(err);
    if (fhirError) {
      try {
        await auditRequest(deps, req, res, fhirError.status, undefined, undefined);
        await intentsOf(res)?.closeAll();
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
    deps.logError({
      requestId: requestId(res),
      method: req.method,
      route: (res.locals.route as string | undefined) ?? req.baseUrl,
      error: describeError(err),
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
    throw errors.badRequest(URL_NOT_ENCODED);
  }
}

async function auditRequest(
  deps: FhirRouterDeps,
  req: Request,
  res: Response,
  status: number,
  body: Resource | undefined,
  location: string | undefined,
  persons?: string[],
): Promise<void> {
  if (!deps.audit || res.locals.audited !== true) {
    return;
  }
  const interaction = res.locals.interaction as FhirInteraction | undefined;
  await deps.audit({
    principal: res.locals.principal as Principal | undefined,
    interaction,
    status,
    body,
    written: location === undefined ? undefined : literalKeyOf(location, baseUrl(deps, req)),
    persons,
    bundleType: res.locals.bundleType as string | undefined,
    requestId: requestId(res),
  });
}

async function handle(ctx: InteractionContext, req: Request, res: Response): Promise<FhirResponse> {
  const what = res.locals.interaction as FhirInteraction;
  const url = new URL(req.originalUrl, 'http://x');
  checkQueryLimits(url.searchParams);
  const prefer = returnPreference(req.get('prefer'));
  let params = url.searchParams;
  if (what.kind === 'search' && what.via === 'post') {
    params = new URLSearchParams(url.searchParams);
    readFormBody(req).forEach((value, key) => params.append(key, value));
    checkQueryLimits(params);
  }
  if (what.kind === 'bundle') {
    const bundle = readJsonBody(req, { bundleEntriesEach: true });
    // The audit names a batch by this type (anything else posted here is a transaction), taken from the
    // body as read once, through the body guard: a body the guard refused is not parsed again for it.
    const { type } = bundle as { type?: unknown };
    res.locals.bundleType = typeof type === 'string' ? type : undefined;
    return processBundle(ctx, bundle, prefer);
  }
  return perform(ctx, {
    request: {
      what,
      params,
      header: (name) => req.get(name),
      body: () => readJsonBody(req),
    },
    prefer,
    ifMatch: req.get('if-match') !== undefined ? parseETag(req.get('if-match') ?? '', 'If-Match') : undefined,
    ifNoneExist: conditionalQuery(req.get('if-none-exist')),
  });
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

/**
 * The base of every link, Location and DPoP `htu`: PUBLIC_BASE_URL (required in production). Without it
 * (development only) the address this server was reached at on its own socket — never the Host header,
 * which the client chooses and would otherwise be reflected into links other clients follow.
 */
function baseUrl(deps: FhirRouterDeps, req: Request): string {
  if (deps.publicBaseUrl) {
    return deps.publicBaseUrl.replace(/\/+$/, '');
  }
  return `${serverOrigin(req)}${req.baseUrl}`;
}

function requestId(res: Response): string {
  const existing = res.locals.requestId as unknown;
  if (typeof existing === 'string') {
    return existing;
  }
  const created = newServerId();
  res.locals.requestId = created;
  return created;
}
