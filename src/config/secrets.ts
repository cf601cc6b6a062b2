import fs from 'node:fs';
import { ConfigError } from './ConfigError';

export type Env = Record<string, string | undefined>;

/**
 * Reads a setting that may be a secret: either `NAME` itself or the contents of the file named by
 * `NAME_FILE` (Docker/Kubernetes secrets), trailing newline removed. Setting both is refused, because
 * the operator would not know which one wins. Returns undefined when neither is set.
 */
export function readSecret(env: Env, name: string): string | undefined {
  const direct = nonEmpty(env[name]);
  const file = nonEmpty(env[`${name}_FILE`]);
  if (direct !== undefined && file !== undefined) {
    throw new ConfigError(`Set either ${name} or ${name}_FILE, not both`);
  }
  if (file === undefined) {
    return direct;
  }
  let content: string;
  try {
    content = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${name}_FILE names a file that cannot be read (${code}): ${file}`);
  }
  const value = content.replace(/\r?\n$/, '');
  if (value === '') {
    throw new ConfigError(`${name}_FILE names an empty file: ${file}`);
  }
  return value;
}

/** Unset and empty are the same to an operator writing `FOO=` in an env file. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
