import fs from 'node:fs';
import path from 'node:path';
import { parseOptions, type CliCommand } from '../cli/command';
import { loadConfig } from '../config';
import { AuditLog, auditLogPath } from './log';

const USAGE = `norpain audit verify [--data-dir DIR]

Recomputes the audit log's hash chain (DATA_DIR/audit.sqlite, or the one under --data-dir, e.g. a backup).
Prints OK with the number of entries and the head hash, which is worth keeping elsewhere: it anchors every
entry before it. Otherwise prints the first broken position. Exit code 0 intact, 1 broken, 2 not found.`;

/**
 * `norpain audit verify`. Returns the exit code: 0 intact, 1 broken, 2 no audit log in the data folder.
 */
export function runAuditVerify(dataDir: string, print: (line: string) => void = console.log): number {
  const file = auditLogPath(dataDir);
  if (!fs.existsSync(file)) {
    print(`audit log not found: ${file} (check DATA_DIR)`);
    return 2;
  }
  const log = AuditLog.openReadOnly(file);
  try {
    const result = log.verifyChain();
    if (result.ok) {
      print(`audit log OK: ${result.count} entries, head ${result.head}`);
      return 0;
    }
    print(`audit log BROKEN at entry ${result.position}: ${result.reason}`);
    print(`${result.count} entries before it verified`);
    return 1;
  } finally {
    log.close();
  }
}

export const auditVerifyCommand: CliCommand = {
  name: 'audit verify',
  summary: "verify the audit log's hash chain",
  usage: USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, { 'data-dir': { type: 'string' } });
    const dataDir =
      values['data-dir'] !== undefined ? path.resolve(values['data-dir']) : loadConfig(env).dataDir;
    return runAuditVerify(dataDir, (line) => process.stdout.write(line + '\n'));
  },
};
