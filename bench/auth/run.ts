/**
 * Authorisation benchmark (not a test): authorised requests per second through the real server on
 * 127.0.0.1, each with full token verification (signature, issuer, audience, expiry), the matrix, the
 * view and one AuditEvent appended to the audit log. Three runs:
 *
 *   - verify only: the authenticator on its own (ES256 dev token), no HTTP;
 *   - Bearer: GET Condition/{id} of the clinic's own unit with a clinic token;
 *   - DPoP: the same with a DPoP-bound token and a fresh proof per request (signed by the client here,
 *     so the figure includes the client's ES256 signing).
 *
 *   npx tsx bench/auth/run.ts [--requests N] [--concurrency C]
 *
 * All people are synthetic (month + 80 national ids).
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { issueDevToken } from '../../src/auth/devTokens';
import { loadConfig } from '../../src/config';
import { syntheticNationalId } from '../../src/identity/synthetic';
import { createLogger, setLogger } from '../../src/logging/logger';
import { createServer } from '../../src/server';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const REQUESTS = arg('requests', 3000);
const CONCURRENCY = arg('concurrency', 16);

async function timed(label: string, n: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        await one(next++);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(
    `${label.padEnd(50)} ${n} requests  ${(n / seconds).toFixed(0).padStart(6)} req/s  ${((seconds / n) * 1000 * CONCURRENCY).toFixed(2)} ms mean latency`,
  );
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-bench-auth-'));
  const env = { NODE_ENV: 'development', DATA_DIR: dataDir, LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '0' };
  const config = loadConfig(env);
  setLogger(createLogger({ level: 'silent' }));
  const server = await createServer(config, { identityEnv: env });
  const listening = await server.listen(0, '127.0.0.1');
  const base = `${listening.url}/fhir`;
  try {
    const clinic = await issueDevToken(config, { role: 'clinic', org: '999001' });
    const fnr = syntheticNationalId('fnr');
    const submitted = await fetch(`${base}/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${clinic}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:0b7c7a4e-0000-4000-8000-000000000001',
            resource: {
              resourceType: 'Patient',
              identifier: [{ system: 'urn:oid:2.16.578.1.12.4.1.4.1', value: fnr }],
            },
            request: { method: 'POST', url: 'Patient' },
          },
          {
            resource: {
              resourceType: 'Condition',
              code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] },
              subject: { reference: 'urn:uuid:0b7c7a4e-0000-4000-8000-000000000001' },
            },
            request: { method: 'POST', url: 'Condition' },
          },
        ],
      }),
    });
    const bundle = (await submitted.json()) as { entry: { response: { location: string } }[] };
    const condition = bundle.entry[1].response.location.split('/_history')[0];
    const url = `${base}/${condition}`;

    console.log(
      `NorPain auth benchmark: ${REQUESTS} requests per run, concurrency ${CONCURRENCY}, ${os.cpus().length} CPUs`,
    );
    await timed('verify only (authenticator, ES256)', REQUESTS, async () => {
      await server.authenticate({ headers: { authorization: `Bearer ${clinic}` } });
    });
    await timed('GET own Condition, Bearer (verify+authz+audit)', REQUESTS, async () => {
      const reply = await fetch(url, { headers: { authorization: `Bearer ${clinic}` } });
      if (reply.status !== 200) throw new Error(`status ${reply.status}`);
      await reply.arrayBuffer();
    });
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const bound = await issueDevToken(config, {
      role: 'clinic',
      org: '999001',
      dpopJkt: await calculateJwkThumbprint(jwk),
    });
    const ath = createHash('sha256').update(bound).digest('base64url');
    await timed('GET own Condition, DPoP (+ proof per request)', REQUESTS, async () => {
      const proof = await new SignJWT({ htm: 'GET', htu: url, ath, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(privateKey);
      const reply = await fetch(url, { headers: { authorization: `DPoP ${bound}`, dpop: proof } });
      if (reply.status !== 200) throw new Error(`status ${reply.status}`);
      await reply.arrayBuffer();
    });
  } finally {
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
