import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEvent, Bundle, Condition } from '@medplum/fhirtypes';
import { auditLogPath } from '../../src/audit/log';
import { issueDevToken } from '../../src/auth/devTokens';
import { loadConfig } from '../../src/config';
import { ReservationRegister } from '../../src/consent/register';
import { IdentityVault } from '../../src/identity/vault/IdentityVault';
import { EmbeddedStore } from '../../src/store/embedded';
import { call, STARTED, TAG_SYSTEM, type Reply } from '../consent/fixtures';
import type { TestServer } from '../helpers/testServer';

const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A real `norpain serve` process on its own port and DATA_DIR, killed with SIGKILL and started again. */
export class ServeProcess {
  private child: ChildProcess | undefined;
  readonly port: number;
  stderr = '';

  constructor(
    readonly dataDir: string,
    port: number,
    private readonly env: Record<string, string>,
  ) {
    this.port = port;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The running process's id (for a benchmark's CPU accounting). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** As the test fixtures' TestServer, for `call`. */
  get asTestServer(): TestServer {
    return { baseUrl: `${this.base}/fhir` } as TestServer;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: os.tmpdir(),
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        DATA_DIR: this.dataDir,
        PORT: String(this.port),
        RATE_LIMIT_PER_MINUTE: '0',
        ...this.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child = child;
    await this.waitReady();
  }

  /** Waits until /readyz answers 200 (the start-up work, recovery included, has run), or the process
   * has gone: killed by a signal it has no exit code, and a wait that went on polling for the rest of its
   * minute kept Jest from exiting after a test that killed the process before it was ready. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const child = this.child;
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`serve exited (${child?.exitCode ?? child?.signalCode}): ${this.stderr}`);
      }
      const status = await fetch(`${this.base}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`serve did not become ready: ${this.stderr}`);
  }

  /** kill -9: no shutdown hook runs, no WAL checkpoint, in-flight requests are cut. */
  async kill(): Promise<void> {
    const child = this.child;
    // A child killed by a signal has no exit code, only its signal: either means it is gone already.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async token(role: 'clinic' | 'registry-admin', org = '999001'): Promise<string> {
    const config = loadConfig({ NODE_ENV: 'development', DATA_DIR: this.dataDir });
    return issueDevToken(config, { role, org: role === 'clinic' ? org : undefined, expiresIn: '2h' });
  }

  auditVerify(): { code: number | null; output: string } {
    const result = spawnSync(process.execPath, [BIN, 'audit', 'verify'], {
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), DATA_DIR: this.dataDir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: result.status, output: result.stdout + result.stderr };
  }
}

/** Every Condition carrying a test tag with this prefix, by tag (through the server, as staff). */
export async function conditionsByTag(
  server: TestServer,
  admin: string,
  prefix: string,
): Promise<Map<string, Condition[]>> {
  const out = new Map<string, Condition[]>();
  // Only what this test file stored: on a shared HAPI server earlier runs' Conditions would crowd the pages.
  let next: string | undefined =
    `Condition?code=${encodeURIComponent(`${TAG_SYSTEM}|`)}&_lastUpdated=ge${STARTED}&_count=1000`;
  while (next) {
    const reply: Reply<Bundle> = await call<Bundle>(server, admin, 'GET', next);
    if (reply.status !== 200) throw new Error(`search failed: ${reply.status} ${reply.text}`);
    for (const entry of reply.body.entry ?? []) {
      const condition = entry.resource as Condition;
      const tag = condition.code?.coding?.[0]?.code ?? '';
      if (tag.startsWith(prefix)) out.set(tag, [...(out.get(tag) ?? []), condition]);
    }
    const url = reply.body.link?.find((l) => l.relation === 'next')?.url;
    next = url ? url.slice(server.baseUrl.length + 1) : undefined;
  }
  return out;
}

/** The façade's own state, read from its files as an operator would (read-only, while the server runs). */
export function facadeState(dataDir: string): {
  vaultPatients: Set<string>;
  pendingErasures: number;
  openIntents: number;
  audited: Set<string>;
} {
  const read = <T>(file: string, sql: string): T[] => {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all() as T[];
    } finally {
      db.close();
    }
  };
  const vaultPatients = new Set(
    read<{ patient_id: string }>(IdentityVault.defaultFile(dataDir), 'SELECT patient_id FROM person').map(
      (r) => r.patient_id,
    ),
  );
  const pendingErasures = read<{ n: number }>(
    ReservationRegister.defaultFile(dataDir),
    'SELECT count(*) AS n FROM pending_erasure',
  )[0].n;
  const openIntents = read<{ n: number }>(
    path.join(dataDir, 'write-journal.sqlite'),
    'SELECT count(*) AS n FROM write_intent',
  )[0].n;
  const audited = new Set<string>();
  for (const { event } of read<{ event: string }>(auditLogPath(dataDir), 'SELECT event FROM audit_event')) {
    const parsed = JSON.parse(event) as AuditEvent;
    if (parsed.outcome !== '0') continue;
    for (const entity of parsed.entity ?? []) {
      if (entity.what?.reference) audited.add(entity.what.reference);
    }
  }
  return { vaultPatients, pendingErasures, openIntents, audited };
}

/** Patients (not deleted) in the embedded store's file. */
export function embeddedPatients(dataDir: string): string[] {
  const db = new Database(EmbeddedStore.defaultFile(dataDir), { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare("SELECT id FROM resource WHERE type = 'Patient' AND deleted = 0").all() as { id: string }[]
    ).map((r) => r.id);
  } finally {
    db.close();
  }
}

/**
 * A TCP-level HTTP proxy in front of HAPI that, when `dropping` says so for a request, lets HAPI process
 * it and then cuts the connection instead of passing the answer on: HAPI has committed, the server hears
 * nothing back.
 */
export async function startDroppingProxy(
  target: string,
  dropping: (method: string, url: string) => boolean,
): Promise<{ url: string; dropped: () => number; close: () => Promise<void> }> {
  const upstream = new URL(target);
  let dropped = 0;
  const server = http.createServer((req, res) => {
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          if (dropping(req.method ?? 'GET', req.url ?? '')) {
            dropped++;
            req.socket.destroy(); // committed upstream; the answer is lost on the way back
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(Buffer.concat(chunks));
        });
      },
    );
    forward.on('error', () => req.socket.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const prefix = upstream.pathname.replace(/\/+$/, '');
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    dropped: () => dropped,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-crash-'));
}
