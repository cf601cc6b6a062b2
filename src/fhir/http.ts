import fs from 'node:fs';
import { isIPv6 } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { stringify } from '@medplum/core';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { checkNesting, checkShape } from './bodyGuard';
import { errors } from './outcomes';

/** HTTP plumbing of the FHIR REST layer: media types, body decoding, preferences and the response. */

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);
const FORMAT_VALUES = new Set(['json', ...JSON_TYPES]);

/** What the FHIR layer answers with; batch entries reuse it as entry.response. */
export interface FhirResponse {
  status: number;
  body?: Resource;
  headers: Record<string, string>;
  /** Warnings about a write (what was not stored), for Bundle.entry.response.outcome of a batch entry. */
  outcome?: OperationOutcome;
  /** Registry pseudonyms of persons the request concerned that the body does not show (a reservation's
   * person): for the audit entry only, never sent. */
  auditPersons?: string[];
  /** Instead of `body`, content that is not a FHIR resource: JSON (the Bulk Data manifest) or a file
   * streamed from disk (an export's NDJSON), sent as it is with this media type. */
  content?: { type: string; json?: unknown; file?: string };
}

/** Rejects with 406 when neither `_format` nor `Accept` allows a JSON representation (or one of `also`,
 * the media types an operation answers with besides FHIR JSON). */
export function checkAcceptable(req: Request, also: readonly string[] = []): void {
  const format = new URL(req.originalUrl, 'http://x').searchParams.get('_format');
  if (format !== null) {
    if (!FORMAT_VALUES.has(format.split(';')[0].trim())) {
      throw errors.notAcceptable(
        `_format=${format} is not supported; this server speaks application/fhir+json only.`,
      );
    }
    return;
  }
  const accept = req.get('accept');
  if (!accept) {
    return;
  }
  const acceptable = accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) {
      return false;
    }
    return type === '*/*' || type === 'application/*' || JSON_TYPES.has(type) || also.includes(type);
  });
  if (!acceptable) {
    throw errors.notAcceptable(
      'The Accept header allows no representation this server has: use application/fhir+json.',
    );
  }
}

/** The media type of the request body, lower case and without parameters, after checking its charset. */
function mediaType(req: Request): string | undefined {
  const header = req.get('content-type');
  if (!header) {
    return undefined;
  }
  const [type, ...params] = header.split(';').map((part) => part.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='));
  if (charset && !['charset=utf-8', 'charset="utf-8"', 'charset=utf8'].includes(charset)) {
    throw errors.unsupportedMediaType(`Only UTF-8 bodies are accepted, not ${charset.slice(8)}.`);
  }
  return type;
}

function rawBody(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** Decodes a FHIR JSON body: 415 for other media types, 400 for an empty, malformed, too deeply nested or
 * wrongly shaped body (src/fhir/bodyGuard.ts), so that nothing after this walks a malformed structure.
 * `bundleEntriesEach`: a batch or transaction, whose entries bundles.ts checks one by one. */
export function readJsonBody(req: Request, options: { bundleEntriesEach?: boolean } = {}): unknown {
  const type = mediaType(req);
  if (type === undefined || !JSON_TYPES.has(type)) {
    throw errors.unsupportedMediaType(
      `Content-Type ${type ?? '(none)'} is not supported; send application/fhir+json or application/json.`,
    );
  }
  const text = rawBody(req).toString('utf8');
  if (text.trim() === '') {
    throw errors.badRequest('The request body is empty; a FHIR resource was expected.');
  }
  checkNesting(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errors.badRequest('The request body is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw errors.badRequest('The request body must be a JSON object (a FHIR resource).');
  }
  checkShape(value, { skipEntries: options.bundleEntriesEach });
  return value;
}

/** The parameters of a `POST Type/_search` form body (415 for anything but form encoding). */
export function readFormBody(req: Request): URLSearchParams {
  const body = rawBody(req);
  if (body.length === 0) {
    return new URLSearchParams();
  }
  const type = mediaType(req);
  if (type !== 'application/x-www-form-urlencoded') {
    throw errors.unsupportedMediaType(
      `POST _search takes application/x-www-form-urlencoded parameters, not ${type ?? '(no Content-Type)'}.`,
    );
  }
  return new URLSearchParams(body.toString('utf8'));
}

export type ReturnPreference = 'minimal' | 'representation' | 'OperationOutcome';

/** `Prefer: return=...`; representation when absent or unrecognised (the header is only a preference). */
export function returnPreference(header: string | undefined): ReturnPreference {
  const match = /(?:^|[;,\s])return\s*=\s*"?(minimal|representation|OperationOutcome)"?/i.exec(header ?? '');
  const value = match?.[1].toLowerCase();
  return value === 'minimal'
    ? 'minimal'
    : value === 'operationoutcome'
      ? 'OperationOutcome'
      : 'representation';
}

/** `If-Match: W/"3"` (or `"3"`, or `3`) → "3". */
export function parseETag(value: string, header: string): string {
  const match = /^\s*(?:W\/)?"?([A-Za-z0-9\-.]{1,64})"?\s*$/.exec(value);
  if (!match) {
    throw errors.badRequest(`${header} must be a version ETag such as W/"3".`);
  }
  return match[1];
}

export function etag(versionId: string | undefined): string | undefined {
  return versionId === undefined ? undefined : `W/"${versionId}"`;
}

/** `meta.lastUpdated` as an HTTP date for Last-Modified. */
export function httpDate(instant: string | undefined): string | undefined {
  if (!instant) {
    return undefined;
  }
  const date = new Date(instant);
  return Number.isNaN(date.getTime()) ? undefined : date.toUTCString();
}

export function sendFhir(req: Request, res: Response, response: FhirResponse): void {
  res.status(response.status);
  for (const [name, value] of Object.entries(response.headers)) {
    res.setHeader(name, value);
  }
  if (response.content !== undefined) {
    sendContent(res, response.content);
    return;
  }
  if (response.body === undefined) {
    res.end();
    return;
  }
  const pretty = new URL(req.originalUrl, 'http://x').searchParams.get('_pretty') === 'true';
  res.setHeader('Content-Type', FHIR_JSON);
  res.send(fhirJson(response.body, pretty));
}

/** A resource as FHIR JSON, which has no empty arrays, objects or strings (R4 JSON §2.6.2): the response
 * builders may leave an `entry: []` or `searchRevInclude: []`, and R4 clients and validators reject them. */
export function fhirJson(body: Resource, pretty = false): string {
  return stringify(body, pretty);
}

function sendContent(res: Response, content: NonNullable<FhirResponse['content']>): void {
  res.setHeader('Content-Type', content.type);
  if (content.file === undefined) {
    res.send(JSON.stringify(content.json));
    return;
  }
  // Streamed with backpressure: memory stays flat whatever the file's size. A read error after the
  // headers went out can only cut the response short, which the client sees as an incomplete body.
  pipeline(fs.createReadStream(content.file), res).catch(() => res.destroy());
}

/** This server's own address as the socket the request arrived on has it (development, without
 * PUBLIC_BASE_URL): never the Host header, which the client chooses. */
export function serverOrigin(req: Request): string {
  const address = (req.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  const host = isIPv6(address) ? `[${address}]` : address;
  return `http://${host}:${req.socket.localPort ?? 80}`;
}
