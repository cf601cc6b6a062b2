import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { BackendClient } from '../../src/auth/clientAssertion';
import { devClientsPath, type DevClient } from '../../src/auth/devClients';

/** Registers SMART Backend Services clients in a test server's DATA_DIR, as an operator would. */

export async function newKeyPair(
  alg: 'ES384' | 'RS384' | 'ES256' = 'ES384',
): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg },
  };
}

/** Adds a client (with a new ES384 key pair) to DATA_DIR/backend-clients.json; its private side. */
export async function registerClient(
  dataDir: string,
  registration: Omit<DevClient, 'jwks' | 'scopes'> & { scopes?: string[] },
): Promise<BackendClient> {
  const { privateJwk, publicJwk } = await newKeyPair();
  const file = devClientsPath(dataDir);
  const existing = fs.existsSync(file)
    ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { clients: DevClient[] })
    : { clients: [] };
  existing.clients.push({ scopes: ['system/*.rs'], ...registration, jwks: { keys: [publicJwk] } });
  fs.writeFileSync(file, JSON.stringify(existing, null, 2));
  return { clientId: registration.clientId, privateJwk };
}
