import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { containsNationalId } from '../identity/nationalId';
import { newServerId } from '../identity/serverId';
import type { Logger } from './logger';

/**
 * A client-supplied X-Request-Id is kept only if it is short and plain, so it cannot inject log content,
 * and holds nothing that looks like a national id (an EPR may use its patient's number as request id);
 * otherwise the server assigns one.
 */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

function acceptedRequestId(incoming: string | undefined): string {
  return incoming !== undefined && SAFE_REQUEST_ID.test(incoming) && !containsNationalId(incoming)
    ? incoming
    : newServerId();
}

/** The request id of this request (set by requestLogging), for audit events and error responses. */
export function requestIdOf(res: Response): string {
  return (res.locals.requestId as string | undefined) ?? 'unknown';
}

/**
 * The route pattern of a request, never its concrete URL: the URL carries resource ids and search values
 * (identifiers). In order: what the handler put in `res.locals.route` (the FHIR router: the route of the
 * request's classification, src/fhir/classify.ts); the matched Express route; else "(unmatched)".
 */
export function routePatternOf(req: Request, res: Response): string {
  const explicit = res.locals.route as string | undefined;
  if (explicit !== undefined) {
    return explicit;
  }
  const route = req.route as { path?: unknown } | undefined;
  if (route?.path !== undefined) {
    return `${req.baseUrl}${String(route.path)}`;
  }
  return '(unmatched)';
}

/**
 * Assigns a request id (echoed as X-Request-Id) and writes one log line when the response is finished
 * or the client went away: method, route pattern, status, duration, request id. No bodies, no query.
 */
export function requestLogging(logger: Logger): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const requestId = acceptedRequestId(req.get('x-request-id'));
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    let logged = false;
    const log = (): void => {
      if (logged) {
        return;
      }
      logged = true;
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info('request', {
        method: req.method,
        route: routePatternOf(req, res),
        // 499 (nginx's convention): the client closed the connection before the response was sent.
        status: res.writableFinished ? res.statusCode : 499,
        durationMs: Math.round(durationMs * 10) / 10,
        requestId,
      });
    };
    res.on('finish', log);
    res.on('close', log);
    next();
  };
}
