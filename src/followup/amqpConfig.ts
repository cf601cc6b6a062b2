import type { ConnectionOptions } from 'rhea';
import { ConfigError, parseInteger, readSecret, type Env } from '../config';
import { nonEmpty } from '../config/secrets';

/** Where and how the AMQP 1.0 channel delivers invitations (FOLLOWUP_CHANNEL=amqp; docs/followup.md). */
export interface AmqpSettings {
  /** What rhea needs to open the connection; the password never appears in logs or errors. */
  connection: ConnectionOptions;
  /** The target address invitations are published to, e.g. RabbitMQ's `/queue/norpain.invitations`. */
  address: string;
  /** Where a message the broker refused, or that was never confirmed, is put for operators to see. */
  deadLetterAddress: string;
  /** Publishes per invitation before it is dead-lettered, and the backoff between them. */
  retry: { attempts: number; initialDelayMs: number; maxDelayMs: number };
  /** How long one publish waits for the broker's disposition before it counts as not confirmed. */
  confirmTimeoutMs: number;
}

/**
 * RabbitMQ's `/queue/NAME` declares the (durable) queue if it is missing; `/amq/queue/NAME` would not, and
 * RabbitMQ 3.x then accepts messages to a queue that does not exist and drops them.
 */
export const DEFAULT_ADDRESS = '/queue/norpain.invitations';
export const DEFAULT_DEAD_LETTER_ADDRESS = '/queue/norpain.invitations.dead-letter';

/** Reads the AMQP channel's settings; every problem is a ConfigError naming the variable. */
export function loadAmqpSettings(env: Env): AmqpSettings {
  // A secret: the URL carries the broker password, so it may come from AMQP_URL_FILE.
  const raw = readSecret(env, 'AMQP_URL');
  if (raw === undefined) {
    throw new ConfigError(
      'AMQP_URL (or AMQP_URL_FILE) must be set when FOLLOWUP_CHANNEL=amqp (e.g. amqps://user:password@broker:5671)',
    );
  }
  const retry = {
    attempts: parseInteger(env, 'AMQP_RETRY_ATTEMPTS', 5, 1, 1000),
    initialDelayMs: parseInteger(env, 'AMQP_RETRY_INITIAL_MS', 250, 1, 3_600_000),
    maxDelayMs: parseInteger(env, 'AMQP_RETRY_MAX_MS', 10_000, 1, 3_600_000),
  };
  if (retry.maxDelayMs < retry.initialDelayMs) {
    throw new ConfigError('AMQP_RETRY_MAX_MS must not be smaller than AMQP_RETRY_INITIAL_MS');
  }
  return {
    connection: parseAmqpUrl(raw),
    address: nonEmpty(env.AMQP_ADDRESS) ?? DEFAULT_ADDRESS,
    deadLetterAddress: nonEmpty(env.AMQP_DEAD_LETTER_ADDRESS) ?? DEFAULT_DEAD_LETTER_ADDRESS,
    retry,
    confirmTimeoutMs: parseInteger(env, 'AMQP_CONFIRM_TIMEOUT_MS', 30_000, 100, 3_600_000),
  };
}

function parseAmqpUrl(raw: string): AmqpSettings['connection'] {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') || url.hostname === '') {
    // The value may hold a password: the message must not repeat it.
    throw new ConfigError('AMQP_URL must be an amqp://user:password@host:port or amqps://… URL');
  }
  const tls = url.protocol === 'amqps:';
  const vhost = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const common = {
    host: url.hostname,
    port: url.port === '' ? (tls ? 5671 : 5672) : Number(url.port),
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    // RabbitMQ picks the virtual host from the open frame's hostname.
    ...(vhost === '' ? {} : { hostname: `vhost:${vhost}` }),
  };
  return tls ? { ...common, transport: 'tls' } : { ...common, transport: 'tcp' };
}
