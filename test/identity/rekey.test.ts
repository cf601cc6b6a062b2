import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseSearchRequest } from '@medplum/core';
import type { Encounter, Patient } from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { pseudonymVersion } from '../../src/identity/pseudonym';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { EmbeddedStore } from '../../src/store/embedded';
import { startTestServer, type TestServer } from '../helpers/testServer';

/** `norpain rekey` as a real process against the files a real server wrote. */
const run = promisify(execFile);
const random = seededRandom(9);
const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');

let server: TestServer;
afterAll(async () => {
  await server?.stop();
});

test('norpain rekey moves every pseudonym to the new key without losing or duplicating a person', async () => {
  server = await startTestServer();
  const token = await server.token('clinic');
  const fnrs = Array.from({ length: 25 }, () => syntheticNationalId('fnr', { random }));
  const send = async (body: unknown) => {
    const res = await fetch(`${server.baseUrl}/${(body as { resourceType: string }).resourceType}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string };
  };
  const ids: string[] = [];
  for (const fnr of fnrs) {
    ids.push(
      (await send({ resourceType: 'Patient', identifier: [{ system: preferredSystem.fnr, value: fnr }] })).id,
    );
    await send({
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { identifier: { system: preferredSystem.fnr, value: fnr } },
    });
  }
  await server.server.close();

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    DATA_DIR: server.dataDir,
    LOG_LEVEL: 'warn',
  };
  for (const name of [
    'PSEUDONYM_KEYS',
    'PSEUDONYM_KEY',
    'VAULT_KEY',
    'PSEUDONYM_KEYS_FILE',
    'VAULT_KEY_FILE',
  ]) {
    delete env[name];
  }
  const first = await run(process.execPath, [BIN, 'rekey', '--new-key'], { env });
  expect(first.stdout).toContain('added pseudonym key version 2');
  expect(first.stdout).toContain('re-keyed 25 of 25 persons to key version 2');
  const again = await run(process.execPath, [BIN, 'rekey'], { env });
  expect(again.stdout).toContain('re-keyed 0 of 25 persons');

  const store = EmbeddedStore.open(EmbeddedStore.defaultFile(server.dataDir));
  try {
    const patients = (await store.search<Patient>(parseSearchRequest('Patient?_count=100'))).matches;
    expect(patients.map((p) => p.id).sort()).toEqual([...ids].sort());
    for (const patient of patients) {
      expect(patient.identifier).toHaveLength(1);
      expect(pseudonymVersion(patient.identifier?.[0].value ?? '')).toBe(2);
    }
    expect(new Set(patients.map((p) => p.identifier?.[0].value)).size).toBe(25);
    const encounters = (await store.search<Encounter>(parseSearchRequest('Encounter?_count=100'))).matches;
    expect(encounters.map((e) => e.subject?.reference).sort()).toEqual(
      ids.map((id) => `Patient/${id}`).sort(),
    );
  } finally {
    await store.close();
  }
}, 120_000);
