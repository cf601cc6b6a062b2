import fs from 'node:fs';
import path from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { ROLES, type Role } from './principal';

/**
 * The SMART Backend Services clients a development server knows (DATA_DIR/backend-clients.json): each
 * with its client id, its public keys (JWKS), the role and study its tokens carry and the scopes it may be
 * granted. Production has no such file: there HelseID registers clients and issues their tokens.
 *
 *   { "clients": [ { "clientId": "study-1-analyst", "role": "researcher", "study": "study-1",
 *                    "scopes": ["system/*.rs"], "jwks": { "keys": [ { "kty": "EC", "crv": "P-384", … } ] } } ] }
 */
export interface DevClient {
  clientId: string;
  role: Role;
  study?: string;
  /** SMART scopes it may be granted (system context). */
  scopes: string[];
  jwks: JSONWebKeySet;
}

export function devClientsPath(dataDir: string): string {
  return path.join(dataDir, 'backend-clients.json');
}

/** Reasons a registration file is unusable, in words an operator can act on (never key material). */
class DevClientsError extends Error {
  override name = 'DevClientsError';
}

/** The registered client with this id, read from the file at each call (so a registration needs no
 * restart); undefined when none is registered. */
export function findDevClient(dataDir: string, clientId: string): DevClient | undefined {
  const file = devClientsPath(dataDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DevClientsError(`${file} is not valid JSON`);
  }
  const clients = (json as { clients?: unknown }).clients;
  if (!Array.isArray(clients)) {
    throw new DevClientsError(`${file} must hold {"clients": [...]}`);
  }
  const found = clients.find((c: unknown) => (c as { clientId?: unknown }).clientId === clientId) as unknown;
  return found === undefined ? undefined : checked(found, file);
}

function checked(value: unknown, file: string): DevClient {
  const client = value as Partial<DevClient>;
  const where = `${file}: client ${String(client.clientId)}`;
  if (typeof client.role !== 'string' || !(ROLES as readonly string[]).includes(client.role)) {
    throw new DevClientsError(`${where} needs a role (${ROLES.join(', ')})`);
  }
  if (client.role === 'researcher' && typeof client.study !== 'string') {
    throw new DevClientsError(`${where} is a researcher and needs a study`);
  }
  if (!Array.isArray(client.scopes) || !client.scopes.every((s) => typeof s === 'string')) {
    throw new DevClientsError(`${where} needs scopes (a list of SMART scopes)`);
  }
  if (!Array.isArray(client.jwks?.keys) || client.jwks.keys.length === 0) {
    throw new DevClientsError(`${where} needs a jwks with at least one public key`);
  }
  return client as DevClient;
}
