import { closeSync, openSync, readSync } from 'node:fs';

const CHUNK = 1 << 20;

/**
 * Whether any of `files` (absent ones count as empty) holds one of `texts` (UTF-8, as SQLite stores text)
 * anywhere in its bytes: live rows, free space, stale copies alike. Read in chunks that overlap by the
 * longest text less one byte, so a text across a chunk boundary is found too.
 */
export function fileHolds(files: readonly string[], texts: readonly string[]): boolean {
  const needles = texts.filter((t) => t.length > 0).map((t) => Buffer.from(t, 'utf8'));
  if (needles.length === 0) {
    return false;
  }
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const buffer = Buffer.allocUnsafe(CHUNK + overlap);
  for (const file of files) {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        continue;
      }
      throw err;
    }
    try {
      let kept = 0; // bytes carried over from the end of the previous chunk
      for (let position = 0; ;) {
        const read = readSync(fd, buffer, kept, CHUNK, position);
        if (read === 0) {
          break;
        }
        position += read;
        const window = buffer.subarray(0, kept + read);
        if (needles.some((n) => window.includes(n))) {
          return true;
        }
        kept = Math.min(overlap, window.length);
        window.copy(buffer, 0, window.length - kept);
      }
    } finally {
      closeSync(fd);
    }
  }
  return false;
}
