import fs from 'node:fs';
import path from 'node:path';
import { parseOptions, type CliCommand } from '../cli/command';
import { loadConfig } from '../config';
import { AuditLog, auditLogPath } from './log';
import { prepareState } from '../state';

const USAGE = `norpain audit verify [--data-dir DIR]

Recomputes the audit log's hash chain (DATA_DIR/audit.sqlite, or the one under --data-dir, e.g. a backup;
with STATE=postgres and no --data-dir, the log in DATABASE_URL that the replicas share).
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
  return verifyAndPrint(AuditLog.openReadOnly(file), print);
}

function verifyAndPrint(log: AuditLog, print: (line: string) => void): number {
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
    const print = (line: string): void => void process.stdout.write(line + '\n');
    if (values['data-dir'] !== undefined) {
      return runAuditVerify(path.resolve(values['data-dir']), print);
    }
    const config = loadConfig(env);
    if (config.state.kind === 'postgres') {
      // The schema is the migrations' business: verify opens what the servers opened, after migrating it.
      await prepareState(config.state);
      return verifyAndPrint(AuditLog.open(auditLogPath(config.dataDir), config.state), print);
    }
    return runAuditVerify(config.dataDir, print);
  },
};
