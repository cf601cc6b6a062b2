import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

const CHUNK = 1 << 20;

/**
 * Whether any of `files` (absent ones count as empty) holds one of `texts` (UTF-8, as SQLite stores text)
 * anywhere in its bytes: live rows, free space, stale copies alike. Read in chunks that overlap by the
 * longest text less one byte, so a text across a chunk boundary is found too. For the façade's small
 * databases; a store's file of gigabytes is read with fileHoldsAsync.
 */
export function fileHolds(files: readonly string[], texts: readonly string[]): boolean {
  const scan = TextScan.of(texts);
  if (scan === undefined) return false;
  for (const file of files) {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      if (isAbsent(err)) continue;
      throw err;
    }
    try {
      scan.restart();
      for (let position = 0; ;) {
        const read = readSync(fd, scan.buffer, scan.kept, CHUNK, position);
        if (read === 0) break;
        position += read;
        if (scan.holds(read)) return true;
      }
    } finally {
      closeSync(fd);
    }
  }
  return false;
}

/** fileHolds, reading on the thread pool: the event loop serves other requests between chunks. */
export async function fileHoldsAsync(files: readonly string[], texts: readonly string[]): Promise<boolean> {
  const scan = TextScan.of(texts);
  if (scan === undefined) return false;
  for (const file of files) {
    for await (const { read } of chunksOf(file, scan)) {
      if (scan.holds(read)) return true;
    }
  }
  return false;
}

/**
 * The pages of `file` (of `pageSize` bytes, numbered from 1 as SQLite numbers them) on which one of
 * `texts` starts, read as fileHoldsAsync reads. A text across two pages counts for both.
 */
export async function filePagesHolding(
  file: string,
  texts: readonly string[],
  pageSize: number,
): Promise<number[]> {
  const scan = TextScan.of(texts);
  const pages = new Set<number>();
  if (scan === undefined) return [];
  for await (const { start, read } of chunksOf(file, scan)) {
    for (const [offset, length] of scan.found(read)) {
      pages.add(Math.floor((start + offset) / pageSize) + 1);
      pages.add(Math.floor((start + offset + length - 1) / pageSize) + 1);
    }
  }
  return [...pages].sort((a, b) => a - b);
}

/**
 * Reads `file` (absent: nothing) chunk by chunk on the thread pool into `scan`'s buffer, after the bytes it
 * kept; each chunk as `read` bytes, with `start` the file offset of the buffer's first byte.
 */
async function* chunksOf(file: string, scan: TextScan): AsyncIterable<{ start: number; read: number }> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if (isAbsent(err)) return;
    throw err;
  }
  try {
    scan.restart();
    for (let position = 0; ;) {
      const start = position - scan.kept;
      const { bytesRead } = await handle.read(scan.buffer, scan.kept, CHUNK, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield { start, read: bytesRead };
    }
  } finally {
    await handle.close();
  }
}

/** The search over one file's chunks: each chunk is read into `buffer` at `kept`, after the bytes kept
 * from the end of the one before. */
class TextScan {
  readonly buffer: Buffer;
  kept = 0;

  private constructor(
    private readonly needles: Buffer[],
    private readonly overlap: number,
  ) {
    this.buffer = Buffer.allocUnsafe(CHUNK + overlap);
  }

  static of(texts: readonly string[]): TextScan | undefined {
    const needles = texts.filter((t) => t.length > 0).map((t) => Buffer.from(t, 'utf8'));
    if (needles.length === 0) return undefined;
    return new TextScan(needles, Math.max(...needles.map((n) => n.length)) - 1);
  }

  restart(): void {
    this.kept = 0;
  }

  /** Whether the chunk just read (`read` bytes), with what was kept before it, holds a text. */
  holds(read: number): boolean {
    const window = this.buffer.subarray(0, this.kept + read);
    if (this.needles.some((n) => window.includes(n))) return true;
    this.keep(window);
    return false;
  }

  /** Where texts stand in the chunk just read, with what was kept before it: [offset, length] in that
   * window (a text in the kept bytes alone was found with the chunk before, and is found again). */
  found(read: number): [number, number][] {
    const window = this.buffer.subarray(0, this.kept + read);
    const at: [number, number][] = [];
    for (const needle of this.needles) {
      for (let i = window.indexOf(needle); i >= 0; i = window.indexOf(needle, i + 1)) {
        at.push([i, needle.length]);
      }
    }
    this.keep(window);
    return at;
  }

  private keep(window: Buffer): void {
    this.kept = Math.min(this.overlap, window.length);
    window.copy(this.buffer, 0, window.length - this.kept);
  }
}

function isAbsent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}
