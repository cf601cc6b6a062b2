import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { errors, FhirError, issue, operationOutcome } from '../../fhir/outcomes';
import { AmbiguousWriteError } from '../ambiguousWrite';

/**
 * HTTP to HAPI FHIR JPA with Node's fetch. One job: get a request to HAPI and its answer back, or turn the
 * failure into a FhirError a client can act on. Requests marked idempotent (reads, PUT by id, conditional
 * create, DELETE, $expunge) are retried when HAPI is unreachable or overloaded, so a dropped connection
 * neither loses nor duplicates a write; others are retried only when the connection was refused, which
 * means the request never reached HAPI. A write that may have reached HAPI and got no answer fails with
 * AmbiguousWriteError, which the ingest pipeline resolves by looking the write up (src/ingest/persist.ts).
 */

export interface HapiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path relative to the base, e.g. "Patient/123" or "Patient?_id=1"; or an absolute URL under the base. */
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Whether sending it twice has the same effect as sending it once. */
  idempotent: boolean;
  timeoutMs?: number;
}

export interface HapiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON body, or undefined when there was none. */
  body: unknown;
}

export interface HapiClientOptions {
  /** Attempts for a retriable request (default 3). */
  attempts?: number;
  /** Per-request timeout in ms (default 30 s). */
  timeoutMs?: number;
  /** Seconds a client is told to wait when HAPI is unreachable (default 5). */
  retryAfterSeconds?: number;
}

const FHIR_JSON = 'application/fhir+json';
const CONNECTION_REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export class HapiClient {
  readonly base: string;
  private readonly attempts: number;
  private readonly timeoutMs: number;
  private readonly retryAfterSeconds: number;

  constructor(baseUrl: string, options: HapiClientOptions = {}) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.attempts = options.attempts ?? 3;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
  }

  private closed = false;

  close(): void {
    this.closed = true;
  }

  /** Sends the request; resolves with any HTTP answer below 500 (callers map 4xx), throws otherwise. */
  async send(request: HapiRequest): Promise<HapiResponse> {
    if (this.closed) {
      throw new Error('The HAPI store has been closed');
    }
    const url = request.path.startsWith(this.base) ? request.path : `${this.base}/${request.path}`;
    // A write that may have reached HAPI (no answer, or a gateway's 502/504) is not "nothing changed".
    let maybeSent = false;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: request.method,
          headers: {
            Accept: FHIR_JSON,
            // HAPI may reuse a cached search result; a store must see its own writes.
            'Cache-Control': 'no-cache',
            ...(request.body === undefined ? {} : { 'Content-Type': FHIR_JSON }),
            ...request.headers,
          },
          body: request.body === undefined ? undefined : JSON.stringify(request.body),
          signal: AbortSignal.timeout(request.timeoutMs ?? this.timeoutMs),
        });
      } catch (err) {
        const code = networkErrorCode(err);
        maybeSent ||= !CONNECTION_REFUSED.has(code);
        if ((request.idempotent || CONNECTION_REFUSED.has(code)) && attempt < this.attempts) {
          await pause(attempt);
          continue;
        }
        break;
      }
      const body = await readJson(response);
      if (response.status < 500) {
        return { status: response.status, headers: response.headers, body };
      }
      maybeSent ||= response.status === 502 || response.status === 504;
      if ([502, 503, 504].includes(response.status) && request.idempotent && attempt < this.attempts) {
        await pause(attempt);
        continue;
      }
      if (![502, 503, 504].includes(response.status)) {
        // HAPI failed internally: its diagnostics may hold SQL or stack traces, so none of it is passed on.
        throw new FhirError(
          502,
          operationOutcome([issue('exception', 'The FHIR store could not process the request.')]),
        );
      }
      break;
    }
    if (maybeSent && request.method !== 'GET') {
      throw new AmbiguousWriteError(this.retryAfterSeconds);
    }
    throw errors.serviceUnavailable(
      'The FHIR store is not reachable at the moment. Nothing was changed by this request; try again shortly.',
      this.retryAfterSeconds,
    );
  }
}

function networkErrorCode(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') {
    return 'TIMEOUT';
  }
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : 'NETWORK';
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text.length === 0) {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
}

/** Words that mean a HAPI message carries internals (SQL, Java classes) rather than a client's mistake. */
const INTERNALS = /\b(SQL|JDBC|Exception|org\.[a-z]+\.|java\.|hfj_|HFJ_|constraint)\b/;

/** HAPI's diagnostics without its "HAPI-0524: " codes, or undefined when they leak internals. */
function cleanDiagnostics(text: string | undefined): string | undefined {
  if (text === undefined) {
    return undefined;
  }
  const cleaned = text.replace(/HAPI-\d{4}:\s*/g, '').trim();
  return cleaned.length === 0 || INTERNALS.test(cleaned) ? undefined : cleaned;
}

/** The error issues of HAPI's OperationOutcome, cleaned; empty when there were none worth passing on. */
function hapiIssues(body: unknown): OperationOutcomeIssue[] {
  const outcome = body as OperationOutcome | undefined;
  if (outcome?.resourceType !== 'OperationOutcome') {
    return [];
  }
  const result: OperationOutcomeIssue[] = [];
  for (const i of outcome.issue ?? []) {
    if (i.severity !== 'error' && i.severity !== 'fatal') {
      continue;
    }
    const text = cleanDiagnostics(i.diagnostics ?? i.details?.text);
    if (text !== undefined) {
      result.push(issue(i.code ?? 'processing', text, i.expression));
    }
  }
  return result;
}

/**
 * A HAPI 4xx as the FhirError the client will see: status preserved, HAPI's own explanation kept when it
 * is a client's mistake (unknown search parameter, invalid date), our fallback text otherwise.
 */
export function hapiError(status: number, body: unknown, fallback: string): FhirError {
  const issues = hapiIssues(body);
  const code: OperationOutcomeIssue['code'] =
    status === 404
      ? 'not-found'
      : status === 410
        ? 'deleted'
        : status === 409 || status === 412
          ? 'conflict'
          : 'invalid';
  const outcome = operationOutcome(
    issues.length > 0
      ? issues.map((i) => ({ ...i, code: status === 400 ? i.code : code }))
      : [issue(code, fallback)],
  );
  return new FhirError(status >= 400 && status < 500 ? status : 502, outcome);
}
