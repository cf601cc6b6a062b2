/**
 * A separate process appending to a shared audit log (the contract's "many writers" test): argv is the
 * state configuration (JSON), the data folder, a name and how many entries to append.
 */
import { AuditLog, auditLogPath } from '../../src/audit/log';
import type { StateConfig } from '../../src/state';
import { event } from '../audit/fixtures';

const [configJson, dataDir, name, count] = process.argv.slice(2);
const log = AuditLog.open(auditLogPath(dataDir), JSON.parse(configJson) as StateConfig);
for (let i = 0; i < Number(count); i++) {
  log.append(event({ requestId: `${name}-${i}` }));
}
log.close();
