import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const BIN = path.join(__dirname, '..', '..', 'bin', 'norpain.js');

/** Runs the real `norpain` command in a child process with only these environment variables. */
export function norpain(args: string[], env: Record<string, string> = {}, timeout = 60_000) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env },
    encoding: 'utf8',
    timeout,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
