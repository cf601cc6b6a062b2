import fs from 'node:fs';
import net from 'node:net';
import type { Bundle, Consent, OperationOutcome, Parameters } from '@medplum/fhirtypes';
import { syntheticNationalId, seededRandom } from '../../src/identity/synthetic';
import { call, FNR_SYSTEM, reservation, submission } from '../consent/fixtures';
import { facadeState, freePort, ServeProcess, tempDataDir } from './harness';

/**
 * The clinical store (HAPI) unreachable (issue 12): the server starts anyway, /readyz and writes answer
 * 503 until HAPI is back, and a reservation recorded during an outage completes by itself, never answered
 * with "nothing was changed".
 */

/** A TCP forwarder to HAPI that can be switched off (connections refused) and on again on the same port. */
async function switchableForwarder(target: URL, port: number) {
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  const on = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(Number(target.port), target.hostname);
        sockets.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        const cut = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', cut);
        upstream.on('error', cut);
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const off = () =>
    new Promise<void>((resolve) => {
      sockets.forEach((s) => s.destroy());
      sockets.clear();
      if (server) server.close(() => resolve());
      else resolve();
    });
  return { on, off };
}

function texts(outcome: OperationOutcome): string {
  return (outcome.issue ?? []).map((i) => i.details?.text ?? '').join(' ');
}

test('the server starts while the store is unreachable: /readyz and writes answer 503', async () => {
  const dataDir = tempDataDir();
  const closedPort = await freePort(); // nothing listens there
  const server = new ServeProcess(dataDir, await freePort(), {
    STORE: 'hapi',
    HAPI_URL: `http://127.0.0.1:${closedPort}/fhir`,
  });
  try {
    const started = server.start();
    // It never becomes ready here, and rejects once the process is killed below.
    started.catch(() => undefined);
    const until = Date.now() + 60_000;
    let health = 0;
    while (health !== 200 && Date.now() < until) {
      health = await fetch(`${server.base}/healthz`).then(
        (r) => r.status,
        () => 0,
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(health).toBe(200);
    expect((await fetch(`${server.base}/readyz`)).status).toBe(503);
    const clinic = await server.token('clinic');
    const write = await call<OperationOutcome>(
      server.asTestServer,
      clinic,
      'POST',
      '',
      submission(
        [{ system: FNR_SYSTEM, value: syntheticNationalId('fnr', { random: seededRandom(5) }) }],
        't',
        ['a'],
      ),
    );
    expect(write.status).toBe(503);
    expect(texts(write.body)).toMatch(/nothing was changed/i);
  } finally {
    await server.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, 90_000);

const hapiUrl = process.env.HAPI_URL;
(hapiUrl ? test : test.skip)(
  'HAPI down: a reservation is recorded and answered truthfully, and its erasure completes without the client',
  async () => {
    const target = new URL(hapiUrl as string);
    const port = await freePort();
    const forwarder = await switchableForwarder(target, port);
    await forwarder.on();
    const dataDir = tempDataDir();
    const server = new ServeProcess(dataDir, await freePort(), {
      STORE: 'hapi',
      HAPI_URL: `http://127.0.0.1:${port}${target.pathname}`,
    });
    const fnr = syntheticNationalId('fnr', { random: seededRandom(Date.now() % 100_000) });
    // The run's tag, without the national id: the data dictionary refuses a national id in a kept code.
    const tag = `outage${Date.now().toString(36)}`;
    try {
      await server.start();
      const clinic = await server.token('clinic');
      const admin = await server.token('registry-admin');
      const stored = await call(
        server.asTestServer,
        clinic,
        'POST',
        '',
        submission([{ system: FNR_SYSTEM, value: fnr }], `${tag}-1`, ['a']),
      );
      expect(stored.status).toBe(200);

      await forwarder.off(); // HAPI unreachable
      const reply = await call<OperationOutcome>(
        server.asTestServer,
        admin,
        'POST',
        'Consent',
        reservation(fnr, { channel: 'letter' }),
      );
      expect(reply.status).toBe(503);
      expect(texts(reply.body)).toMatch(/reservation is recorded/);
      expect(texts(reply.body)).not.toMatch(/nothing was changed/i);
      const lookup = await call<Bundle>(
        server.asTestServer,
        admin,
        'GET',
        `Consent?patient.identifier=${encodeURIComponent(`${FNR_SYSTEM}|${fnr}`)}`,
      );
      expect((lookup.body.entry ?? []).map((e) => (e.resource as Consent).status)).toEqual(['active']);
      // A write about the person is refused from now on, although the erasure has not run yet.
      const refused = await call(
        server.asTestServer,
        clinic,
        'POST',
        '',
        submission([{ system: FNR_SYSTEM, value: fnr }], `${tag}-2`, ['a']),
      );
      expect(refused.status).toBe(403);

      // The server stops while HAPI is still down; it starts again once HAPI is back, and completes the
      // erasure before it says it is ready: the client never sent the reservation again.
      await server.kill();
      expect(facadeState(dataDir).pendingErasures).toBe(1);
      await forwarder.on();
      await server.start();
      expect(facadeState(dataDir).pendingErasures).toBe(0);
      expect(facadeState(dataDir).vaultPatients.size).toBe(0);
      const again = await call<Parameters>(
        server.asTestServer,
        admin,
        'POST',
        'Consent',
        reservation(fnr, { channel: 'letter' }),
      );
      expect(again.status).toBe(200);
      const residual = again.body.parameter?.find((p) => p.name === 'residual')?.valueInteger;
      expect(residual).toBe(0);
    } finally {
      await server.kill();
      await forwarder.off();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  },
  120_000,
);
