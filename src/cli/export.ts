import fs from 'node:fs';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import type { JWK } from 'jose';
import { requestBackendToken, type BackendClient } from '../auth/clientAssertion';
import { awaitManifest, downloadFile, kickOff, type Bearer, type Manifest } from '../export/client';
import { parseOptions, UsageError, type CliCommand } from './command';

const USAGE = `norpain export --url FHIR_BASE --out DIR (--client-id ID --key FILE | --token TOKEN)
               [--type T[,T]] [--since INSTANT] [--group ID | --patient] [--scope S] [--token-url URL]

Runs a Bulk Data export against a NorPain server (or any Bulk Data server) as a bulk client does:
kick-off, polling with a progress bar, then downloads every file into DIR and prints the manifest.
It registers nothing: the client must already be registered with the token issuer.
  --url        the FHIR base, e.g. http://localhost:8080/fhir
  --out        folder for the NDJSON files (created if absent) and manifest.json
  --client-id  a SMART Backend Services client id, with
  --key        a file with its private key as a JWK (RS384 or ES384, with its kid)
  --token      or an access token instead (e.g. from norpain token)
  --type       resource types to export (comma-separated; default: all the view offers)
  --since      only resources changed after this instant (FHIR instant, e.g. 2026-01-01T00:00:00Z)
  --group      export Group/ID (a study's id for its researchers; a unit's RESH for staff)
  --patient    export at the Patient level (Patient/$export)
  --scope      the scope asked for with --client-id (default system/*.rs)
  --token-url  the token endpoint (default: from FHIR_BASE/.well-known/smart-configuration)`;

/** Renew a backend-services token this long before it expires. */
const RENEW_BEFORE_MS = 60_000;

export const exportCommand: CliCommand = {
  name: 'export',
  summary: 'run a Bulk Data export and download its files',
  usage: USAGE,
  run: async (args) => {
    const values = parseOptions(args, {
      url: { type: 'string' },
      out: { type: 'string' },
      'client-id': { type: 'string' },
      key: { type: 'string' },
      token: { type: 'string' },
      type: { type: 'string' },
      since: { type: 'string' },
      group: { type: 'string' },
      patient: { type: 'boolean' },
      scope: { type: 'string' },
      'token-url': { type: 'string' },
    });
    if (values.url === undefined || values.out === undefined) {
      throw new UsageError('--url and --out are required');
    }
    if (values.group !== undefined && values.patient === true) {
      throw new UsageError('give --group or --patient, not both');
    }
    const base = values.url.replace(/\/+$/, '');
    const bearer = await bearerFor(base, values);
    const query = new URLSearchParams();
    if (values.type !== undefined) query.set('_type', values.type);
    if (values.since !== undefined) query.set('_since', values.since);
    const level =
      values.group !== undefined
        ? `Group/${encodeURIComponent(values.group)}/$export`
        : values.patient === true
          ? 'Patient/$export'
          : '$export';
    const url = `${base}/${level}${query.size > 0 ? `?${query}` : ''}`;

    const statusUrl = await kickOff(url, bearer);
    process.stderr.write(`export started; status at ${statusUrl}\n`);
    const bar = new SingleBar(
      { format: 'export {bar} {value}/{total} types, {resources} resources', stream: process.stderr },
      Presets.shades_classic,
    );
    let started = false;
    const manifest = await awaitManifest(statusUrl, bearer, {
      onProgress: (progress) => {
        if (progress === undefined) return;
        if (!started) {
          bar.start(progress.types, progress.typesDone, { resources: progress.resources });
          started = true;
        }
        bar.update(progress.typesDone, { resources: progress.resources });
      },
    });
    if (started) {
      bar.update(bar.getTotal(), {});
      bar.stop();
    }

    fs.mkdirSync(values.out, { recursive: true, mode: 0o700 });
    const names = new Map<string, number>();
    for (const file of manifest.output) {
      const n = (names.get(file.type) ?? 0) + 1;
      names.set(file.type, n);
      await downloadFile(file.url, bearer, path.join(values.out, `${file.type}-${n}.ndjson`));
    }
    fs.writeFileSync(path.join(values.out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    process.stdout.write(summary(manifest, values.out));
    return 0;
  },
};

function summary(manifest: Manifest, out: string): string {
  const counts = new Map<string, { files: number; resources: number }>();
  for (const file of manifest.output) {
    const entry = counts.get(file.type) ?? { files: 0, resources: 0 };
    entry.files += 1;
    entry.resources += file.count ?? 0;
    counts.set(file.type, entry);
  }
  const lines = [
    `exported as of ${manifest.transactionTime} into ${out}:`,
    ...[...counts].map(([type, c]) => `  ${type}: ${c.resources} resources in ${c.files} file(s)`),
    `  ${manifest.error.length} error file(s)`,
  ];
  return `${lines.join('\n')}\n`;
}

/** A fixed token, or a backend-services client's tokens, renewed before they expire. */
async function bearerFor(
  base: string,
  values: { token?: string; 'client-id'?: string; key?: string; scope?: string; 'token-url'?: string },
): Promise<Bearer> {
  if (values.token !== undefined) {
    if (values['client-id'] !== undefined) throw new UsageError('give --token or --client-id, not both');
    const token = values.token;
    return async () => token;
  }
  if (values['client-id'] === undefined || values.key === undefined) {
    throw new UsageError('give --client-id with --key, or --token');
  }
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(fs.readFileSync(values.key, 'utf8')) as JWK;
  } catch {
    throw new UsageError(`--key must name a file holding the private key as a JWK: ${values.key}`);
  }
  const client: BackendClient = { clientId: values['client-id'], privateJwk };
  const tokenUrl = values['token-url'] ?? (await discoverTokenUrl(base));
  const scope = values.scope ?? 'system/*.rs';
  let current: { token: string; renewAt: number } | undefined;
  return async () => {
    if (current === undefined || Date.now() >= current.renewAt) {
      const response = await requestBackendToken(client, tokenUrl, scope);
      current = {
        token: response.access_token,
        renewAt: Date.now() + response.expires_in * 1000 - RENEW_BEFORE_MS,
      };
    }
    return current.token;
  };
}

async function discoverTokenUrl(base: string): Promise<string> {
  const response = await fetch(`${base}/.well-known/smart-configuration`);
  const body = response.ok ? ((await response.json()) as { token_endpoint?: unknown }) : {};
  if (typeof body.token_endpoint !== 'string') {
    throw new Error(`${base}/.well-known/smart-configuration names no token_endpoint; give --token-url`);
  }
  return body.token_endpoint;
}
