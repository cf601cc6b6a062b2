import cors from 'cors';
import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { errors } from '../fhir/outcomes';
import type { Principal } from './principal';

/**
 * HTTP hardening (issue 6) from well-kept middleware: security headers (helmet), CORS only for the
 * configured portal origins (cors), and rate limits (express-rate-limit) answered with a FHIR 429
 * OperationOutcome and Retry-After.
 */

/** Headers for an API that serves JSON only: no framing, no sniffing, no referrer, strict transport. */
export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
  });
}

/**
 * CORS for the portal's browser origins. Other origins get no CORS headers (the browser then blocks the
 * response); requests without an Origin (servers, EPR systems) are unaffected.
 */
export function corsFor(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'POST', 'PUT', 'DELETE'],
    allowedHeaders: [
      'Authorization',
      'DPoP',
      'Content-Type',
      'Accept',
      'If-Match',
      'If-None-Exist',
      'Prefer',
    ],
    exposedHeaders: ['Location', 'ETag', 'Last-Modified', 'Retry-After', 'WWW-Authenticate', 'DPoP-Nonce'],
    credentials: false,
    maxAge: 600,
  });
}

const MINUTE = 60_000;

function throttled(text: string): RequestHandler {
  return (req, _res, next) => {
    const reset = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
    const seconds = reset ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000)) : 60;
    next(errors.tooManyRequests(text, seconds));
  };
}

/** Per client (the token's client id): placed after authentication. 0 turns it off. */
export function clientRateLimit(perMinute: number): RequestHandler {
  if (perMinute === 0) {
    return (_req, _res, next) => next();
  }
  return rateLimit({
    windowMs: MINUTE,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (_req, res) => `client:${(res.locals.principal as Principal).clientId}`,
    handler: (req, res, next) =>
      throttled(
        `This client has made more than ${perMinute} requests in a minute; slow down and retry later.`,
      )(req, res, next),
  });
}

/** Per address, counting only failed authentications (guessing tokens): placed before authentication. */
export function authFailureRateLimit(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: MINUTE,
    limit: perMinute,
    standardHeaders: false,
    legacyHeaders: false,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    keyGenerator: (req) => `ip:${ipKeyGenerator(req.ip ?? 'unknown')}`,
    handler: (req, res, next) =>
      throttled('Too many failed authentications from this address; wait before trying again.')(
        req,
        res,
        next,
      ),
  });
}
