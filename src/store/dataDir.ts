import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/ConfigError';

/**
 * DATA_DIR holds the clinical store, the identity vault, the reservation register, the audit log and the
 * keys: nobody but the server's own user may read any of it. Creating files with private modes is not
 * enough, because a folder that existed before (restored from a backup, created by hand or by an older
 * version) keeps whatever modes it had. So at every start the folder is made private throughout: folders
 * 0700, files 0600 (symbolic links are left alone: their modes mean nothing and their targets are not ours
 * to change). What cannot be changed (a file owned by another user) stops the start with a clear message.
 */
export function makeDataDirPrivate(dataDir: string): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const visit = (target: string): void => {
    const stat = fs.lstatSync(target);
    if (stat.isSymbolicLink()) {
      return;
    }
    const mode = stat.isDirectory() ? 0o700 : 0o600;
    if ((stat.mode & 0o777) !== mode) {
      try {
        fs.chmodSync(target, mode);
      } catch (err) {
        throw new ConfigError(
          `DATA_DIR must be private to the server's user, but ${target} cannot be made ${mode.toString(8)} (${(err as NodeJS.ErrnoException).code ?? 'error'}); change its owner or permissions`,
        );
      }
    }
    if (stat.isDirectory()) {
      for (const name of fs.readdirSync(target)) {
        visit(path.join(target, name));
      }
    }
  };
  visit(dataDir);
}
