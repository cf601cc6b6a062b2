import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

/**
 * A Bulk Data client (Bulk Data Access IG v2) as `norpain export` and the end-to-end tests use it:
 * kick-off, polling the status URL (reading X-Progress and honouring Retry-After), and downloading the
 * files of the manifest straight to disk. `bearer` is asked for a token before every request, so a
 * backend-services client can renew its short-lived token while a long export runs.
 */

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count?: number }[];
  error: { type: string; url: string }[];
}

export type Bearer = () => Promise<string>;

export interface Progress {
  resources: number;
  typesDone: number;
  types: number;
}

async function refused(what: string, response: Response): Promise<Error> {
  const text = await response.text();
  let detail = text;
  try {
    const outcome = JSON.parse(text) as { issue?: { details?: { text?: string }; diagnostics?: string }[] };
    detail = outcome.issue?.map((i) => i.details?.text ?? i.diagnostics).join('; ') ?? text;
  } catch {
    // not JSON: the text as it came
  }
  return new Error(`${what} answered ${response.status}: ${detail}`);
}

/** Starts an export at `url` (e.g. `${base}/$export?_type=Patient`); returns the status URL. */
export async function kickOff(url: string, bearer: Bearer): Promise<string> {
  const response = await fetch(url, {
    headers: {
      authorization: `Bearer ${await bearer()}`,
      accept: 'application/fhir+json',
      prefer: 'respond-async',
    },
  });
  const location = response.headers.get('content-location');
  if (response.status !== 202 || location === null) {
    throw await refused('the kick-off', response);
  }
  await response.body?.cancel();
  return location;
}

/** X-Progress as this server writes it ("N resources written; k of T types done"), if it is that. */
function parseProgress(header: string | null): Progress | undefined {
  const match = /^(\d+) resources written; (\d+) of (\d+) types done$/.exec(header ?? '');
  return match
    ? { resources: Number(match[1]), typesDone: Number(match[2]), types: Number(match[3]) }
    : undefined;
}

/** Polls until the manifest comes (waiting as Retry-After says, at most `maxWaitMs` between polls). */
export async function awaitManifest(
  statusUrl: string,
  bearer: Bearer,
  options: {
    onProgress?: (progress: Progress | undefined, header: string | null) => void;
    maxWaitMs?: number;
  } = {},
): Promise<Manifest> {
  for (;;) {
    const response = await fetch(statusUrl, { headers: { authorization: `Bearer ${await bearer()}` } });
    if (response.status === 200) {
      return (await response.json()) as Manifest;
    }
    if (response.status !== 202) {
      throw await refused('the status request', response);
    }
    await response.body?.cancel();
    const header = response.headers.get('x-progress');
    options.onProgress?.(parseProgress(header), header);
    const retryAfter = Number(response.headers.get('retry-after') ?? '1');
    const wait = Math.min(options.maxWaitMs ?? 2000, Number.isFinite(retryAfter) ? retryAfter * 1000 : 1000);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Streams one output file to `file` (never held in memory). */
export async function downloadFile(url: string, bearer: Bearer, file: string): Promise<void> {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${await bearer()}`, accept: 'application/fhir+ndjson' },
  });
  if (response.status !== 200 || response.body === null) {
    throw await refused('the download', response);
  }
  await pipeline(
    Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
    fs.createWriteStream(file),
  );
}
