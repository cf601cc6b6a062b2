import { isConfigError } from '../../src/config';
import {
  DEFAULT_ADDRESS,
  DEFAULT_DEAD_LETTER_ADDRESS,
  loadAmqpSettings,
} from '../../src/followup/amqpConfig';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** FOLLOWUP_CHANNEL=amqp's settings: what an operator writes, and what a bad value gets as an error. */
describe('AMQP channel settings', () => {
  test('a URL with credentials and virtual host, and the defaults for the rest', () => {
    const settings = loadAmqpSettings({ AMQP_URL: 'amqps://norpain:s%40cret@broker.example.no/registry' });
    expect(settings).toEqual({
      connection: {
        host: 'broker.example.no',
        port: 5671,
        transport: 'tls',
        username: 'norpain',
        password: 's@cret',
        hostname: 'vhost:registry',
      },
      address: DEFAULT_ADDRESS,
      deadLetterAddress: DEFAULT_DEAD_LETTER_ADDRESS,
      retry: { attempts: 5, initialDelayMs: 250, maxDelayMs: 10_000 },
      confirmTimeoutMs: 30_000,
    });
  });

  test('the URL from a secret file (AMQP_URL_FILE), plain amqp on its default port', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-config-')), 'url');
    fs.writeFileSync(file, 'amqp://127.0.0.1\n');
    const settings = loadAmqpSettings({
      AMQP_URL_FILE: file,
      AMQP_ADDRESS: '/queue/other',
      AMQP_RETRY_ATTEMPTS: '1',
    });
    expect(settings.connection).toEqual({ host: '127.0.0.1', port: 5672, transport: 'tcp' });
    expect(settings.address).toBe('/queue/other');
    expect(settings.retry.attempts).toBe(1);
  });

  test.each([
    [{}, /AMQP_URL \(or AMQP_URL_FILE\) must be set when FOLLOWUP_CHANNEL=amqp/],
    [{ AMQP_URL: 'amqp://a', AMQP_URL_FILE: '/x' }, /Set either AMQP_URL or AMQP_URL_FILE, not both/],
    [{ AMQP_URL: 'amqp://a', AMQP_RETRY_ATTEMPTS: '0' }, /AMQP_RETRY_ATTEMPTS must be an integer 1-1000/],
    [{ AMQP_URL: 'amqp://a', AMQP_CONFIRM_TIMEOUT_MS: 'soon' }, /AMQP_CONFIRM_TIMEOUT_MS must be an integer/],
    [
      { AMQP_URL: 'amqp://a', AMQP_RETRY_INITIAL_MS: '5000', AMQP_RETRY_MAX_MS: '100' },
      /AMQP_RETRY_MAX_MS must not be smaller than AMQP_RETRY_INITIAL_MS/,
    ],
  ])('refused with a message naming the variable: %j', (env, message) => {
    expect(() => loadAmqpSettings(env)).toThrow(message);
  });

  test('a URL that is not amqp(s) is refused without repeating the password in it', () => {
    let error: unknown;
    try {
      loadAmqpSettings({ AMQP_URL: 'https://norpain:hunter2@broker.example.no' });
    } catch (err) {
      error = err;
    }
    expect(isConfigError(error)).toBe(true);
    expect((error as Error).message).toMatch(/^AMQP_URL must be an amqp:\/\/user:password@host:port/);
    expect((error as Error).message).not.toContain('hunter2');
  });
});
