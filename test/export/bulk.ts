import type { Resource } from '@medplum/fhirtypes';

/** A Bulk Data client as the IG describes one, over fetch: kick-off, poll, download. */

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count?: number }[];
  error: { type: string; url: string }[];
}

export function authorised(token: string, headers: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${token}`, ...headers };
}

/** The kick-off: the status URL from Content-Location (else the failure shows the reply). */
export async function kickOff(url: string, token: string): Promise<string> {
  const response = await fetch(url, {
    headers: authorised(token, { accept: 'application/fhir+json', prefer: 'respond-async' }),
  });
  const location = response.headers.get('content-location');
  if (response.status !== 202 || location === null) {
    throw new Error(
      `kick-off: expected 202 with Content-Location, got ${response.status}: ${await response.text()}`,
    );
  }
  return location;
}

/** Polls the status URL until the manifest (200) comes; the X-Progress values seen on the way. */
export async function awaitManifest(
  statusUrl: string,
  token: string,
): Promise<{ manifest: Manifest; progress: string[] }> {
  const progress: string[] = [];
  for (;;) {
    const response = await fetch(statusUrl, { headers: authorised(token) });
    if (response.status === 200) {
      return { manifest: (await response.json()) as Manifest, progress };
    }
    if (response.status !== 202) {
      throw new Error(`status: expected 202 or 200, got ${response.status}: ${await response.text()}`);
    }
    progress.push(response.headers.get('x-progress') ?? '');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The resources of one output file. */
export async function download(url: string, token: string): Promise<Resource[]> {
  const response = await fetch(url, { headers: authorised(token, { accept: 'application/fhir+ndjson' }) });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`download: expected 200, got ${response.status}: ${text}`);
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Resource);
}

/** Every resource the manifest lists, by type. */
export async function downloadAll(manifest: Manifest, token: string): Promise<Map<string, Resource[]>> {
  const out = new Map<string, Resource[]>();
  for (const file of manifest.output) {
    out.set(file.type, [...(out.get(file.type) ?? []), ...(await download(file.url, token))]);
  }
  return out;
}
