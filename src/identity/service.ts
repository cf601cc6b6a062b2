import type { Env } from '../config/secrets';
import type { Logger } from '../logging/logger';
import { loadIdentityKeys } from './keys';
import { Pseudonymiser } from './pseudonym';
import type { VaultAuditSink } from './vault/audit';
import { IdentityVault } from './vault/IdentityVault';
import type { StateConfig } from '../state';

/**
 * The identity services a process needs (server or CLI): keys, the pseudonymiser and the open vault.
 * Opening fails with a ConfigError when production lacks keys or the vault key does not fit the vault.
 */
export interface IdentityServices {
  pseudonymiser: Pseudonymiser;
  vault: IdentityVault;
  close(): void;
}

export interface OpenIdentityOptions {
  env: Env;
  production: boolean;
  dataDir: string;
  /** Where the vault's rows live; SQLite under dataDir by default. */
  state?: StateConfig;
  logger: Logger;
  /** Where vault reads are recorded; until the audit log consumes them, they are logged (no ids). */
  audit?: VaultAuditSink;
}

export function openIdentity(options: OpenIdentityOptions): IdentityServices {
  const { logger } = options;
  const keys = loadIdentityKeys({
    env: options.env,
    production: options.production,
    dataDir: options.dataDir,
    onCreated: (message, file) => logger.warn(message, { component: 'identity', file }),
  });
  const pseudonymiser = new Pseudonymiser(keys.pseudonym);
  const audit: VaultAuditSink = options.audit ?? {
    record: (event) =>
      logger.info('identity vault read', {
        component: 'identity',
        purpose: event.purpose,
        actor: event.actor,
        requestId: event.requestId,
        count: event.count,
      }),
  };
  const vault = IdentityVault.open({
    file: IdentityVault.defaultFile(options.dataDir),
    state: options.state,
    vaultKey: keys.vault,
    pseudonymiser,
    audit,
  });
  return { pseudonymiser, vault, close: () => vault.close() };
}
