import type { Resource } from '@medplum/fhirtypes';
import * as client from '../../src/export/client';
import { call, FNR_SYSTEM, ok, submission } from '../consent/fixtures';
import type { TestServer } from '../helpers/testServer';

/** The Bulk Data client of src/export/client.ts with a fixed token, and downloads read into memory. */

export type { Manifest } from '../../src/export/client';

export function authorised(token: string, headers: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${token}`, ...headers };
}

export function kickOff(url: string, token: string): Promise<string> {
  return client.kickOff(url, async () => token);
}

/** Polls quickly until the manifest comes; the X-Progress values seen on the way. */
export async function awaitManifest(
  statusUrl: string,
  token: string,
): Promise<{ manifest: client.Manifest; progress: string[] }> {
  const progress: string[] = [];
  const manifest = await client.awaitManifest(statusUrl, async () => token, {
    onProgress: (_parsed, header) => progress.push(header ?? ''),
    maxWaitMs: 50,
  });
  return { manifest, progress };
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
export async function downloadAll(
  manifest: client.Manifest,
  token: string,
): Promise<Map<string, Resource[]>> {
  const out = new Map<string, Resource[]>();
  for (const file of manifest.output) {
    out.set(file.type, [...(out.get(file.type) ?? []), ...(await download(file.url, token))]);
  }
  return out;
}

/** A clinic's transaction of one person (Patient, episode, a Condition per answer code), as clinics send them. */
export async function submitPerson(
  server: TestServer,
  fnr: string,
  tag: string,
  answers: string[],
): Promise<void> {
  const clinic = await server.token('clinic');
  ok(
    await call(server, clinic, 'POST', '', submission([{ system: FNR_SYSTEM, value: fnr }], tag, answers)),
    200,
  );
}
