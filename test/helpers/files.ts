import fs from 'node:fs';
import path from 'node:path';
import { EmbeddedStore } from '../../src/store/embedded';

/**
 * Reading the files a running server or database writes, for the physical-erasure scans: the files come
 * and go while they are read (PostgreSQL removes `pg_internal.init` and rewrites a relation's file on
 * VACUUM FULL; SQLite its `-journal`), so one that is gone by the time it is read holds nothing.
 */
function gone(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Every regular file below `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (gone(err)) return [];
    throw err;
  }
  return entries.flatMap((d) => {
    const full = path.join(dir, d.name);
    return d.isDirectory() ? filesUnder(full) : d.isFile() ? [full] : [];
  });
}

/** The file's bytes; none when it is gone since it was listed. */
export function bytesOf(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if (gone(err)) return Buffer.alloc(0);
    throw err;
  }
}

/** The files of the clinical store in `dataDir` (the database, its WAL and shared memory), as they are now. */
export function storeFiles(dataDir: string): string[] {
  const database = EmbeddedStore.defaultFile(dataDir);
  return filesUnder(path.dirname(database)).filter((f) => f.startsWith(database));
}
