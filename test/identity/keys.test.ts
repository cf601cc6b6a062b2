import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/ConfigError';
import { addDevPseudonymKeyVersion, devKeyFiles, loadIdentityKeys } from '../../src/identity/keys';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-keys-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('identity keys', () => {
  test('development creates keys under DATA_DIR once, says so, and never tells the key', () => {
    const messages: string[] = [];
    const onCreated = (message: string, file: string) => messages.push(`${message} ${file}`);
    const first = loadIdentityKeys({ env: {}, production: false, dataDir: dir, onCreated });
    expect(messages).toHaveLength(2);
    const files = devKeyFiles(dir);
    expect(fs.statSync(files.vault).mode & 0o777).toBe(0o600);
    for (const key of [first.vault, ...first.pseudonym.keys.values()]) {
      for (const message of messages) {
        expect(message).not.toContain(key.toString('base64'));
        expect(message).not.toContain(key.toString('hex'));
      }
    }
    const second = loadIdentityKeys({ env: {}, production: false, dataDir: dir, onCreated });
    expect(messages).toHaveLength(2);
    expect(second.vault.equals(first.vault)).toBe(true);
    expect(second.pseudonym.keys.get(1)?.equals(first.pseudonym.keys.get(1) as Buffer)).toBe(true);
  });

  test('production refuses to start without keys', () => {
    expect(() => loadIdentityKeys({ env: {}, production: true, dataDir: dir })).toThrow(ConfigError);
    expect(() =>
      loadIdentityKeys({
        env: { PSEUDONYM_KEY: randomBytes(32).toString('base64') },
        production: true,
        dataDir: dir,
      }),
    ).toThrow(/VAULT_KEY/);
    expect(fs.existsSync(devKeyFiles(dir).vault)).toBe(false);
  });

  test('keys from variables and *_FILE, with versions', () => {
    const k1 = randomBytes(32).toString('base64');
    const k2 = randomBytes(32).toString('hex');
    const vaultFile = path.join(dir, 'vault.key');
    fs.writeFileSync(vaultFile, randomBytes(32).toString('base64') + '\n');
    const keys = loadIdentityKeys({
      env: { PSEUDONYM_KEYS: `1:${k1},2:${k2}`, VAULT_KEY_FILE: vaultFile },
      production: true,
      dataDir: dir,
    });
    expect(keys.pseudonym.current).toBe(2);
    expect([...keys.pseudonym.keys.keys()]).toEqual([1, 2]);
    const pinned = loadIdentityKeys({
      env: { PSEUDONYM_KEYS: `1:${k1}\n2:${k2}\n`, PSEUDONYM_KEY_VERSION: '1', VAULT_KEY_FILE: vaultFile },
      production: true,
      dataDir: dir,
    });
    expect(pinned.pseudonym.current).toBe(1);
  });

  test('malformed or reused keys are configuration errors', () => {
    const good = randomBytes(32).toString('base64');
    const load = (env: Record<string, string>) => () =>
      loadIdentityKeys({ env, production: true, dataDir: dir });
    expect(load({ PSEUDONYM_KEY: 'short', VAULT_KEY: good })).toThrow(/32 random bytes/);
    expect(load({ PSEUDONYM_KEYS: '1:x', VAULT_KEY: good })).toThrow(ConfigError);
    expect(load({ PSEUDONYM_KEYS: good, VAULT_KEY: good })).toThrow(/<version>:/);
    expect(load({ PSEUDONYM_KEY: good, VAULT_KEY: good })).toThrow(/differ/);
    expect(
      load({
        PSEUDONYM_KEY: good,
        PSEUDONYM_KEYS: `1:${good}`,
        VAULT_KEY: randomBytes(32).toString('base64'),
      }),
    ).toThrow(/either/);
  });

  test('development rekey support adds a key version', () => {
    loadIdentityKeys({ env: {}, production: false, dataDir: dir });
    expect(addDevPseudonymKeyVersion(dir)).toBe(2);
    expect(loadIdentityKeys({ env: {}, production: false, dataDir: dir }).pseudonym.current).toBe(2);
  });
});
