import fs from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { fileHoldsAsync } from '../store/fileHolds';
import type { OutputFile } from './jobs';

/**
 * Where an export's files live: EXPORT_DIR/{job}/ (DATA_DIR/export/files by default). While the job runs they are written under
 * `partial/`; only when every file is complete is that folder renamed to `files/` (one atomic rename), so
 * nothing partial is ever served, and a job that stops half-way leaves nothing a download could reach.
 */
export class ExportFiles {
  constructor(private readonly root: string) {}

  private jobDir(jobId: string): string {
    return path.join(this.root, jobId);
  }

  /** A writer for a new job's files (its partial folder created, private). */
  writer(jobId: string, maxFileBytes: number): NdjsonWriter {
    const dir = path.join(this.jobDir(jobId), 'partial');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new NdjsonWriter(dir, maxFileBytes);
  }

  /** Makes the partial files of a job the served ones. */
  publish(jobId: string): void {
    fs.renameSync(path.join(this.jobDir(jobId), 'partial'), path.join(this.jobDir(jobId), 'files'));
  }

  /** The path of a published file, or undefined when it does not exist (never outside the job's folder). */
  published(jobId: string, name: string): string | undefined {
    if (!/^[A-Za-z]+-\d+\.ndjson$/.test(name)) return undefined;
    const file = path.join(this.jobDir(jobId), 'files', name);
    return fs.existsSync(file) ? file : undefined;
  }

  /** Deletes everything of a job, partial or published. */
  remove(jobId: string): void {
    fs.rmSync(this.jobDir(jobId), { recursive: true, force: true });
  }

  /** Whether any file of a job, partial or published, holds one of `texts` (read off the event loop: a
   * staff export is gigabytes). */
  holds(jobId: string, texts: readonly string[]): Promise<boolean> {
    const dir = this.jobDir(jobId);
    const files = fs.existsSync(dir)
      ? fs
          .readdirSync(dir, { recursive: true, withFileTypes: true })
          .filter((entry) => entry.isFile())
          .map((entry) => path.join(entry.parentPath, entry.name))
      : [];
    return fileHoldsAsync(files, texts);
  }

  /** Job folders on disk (to remove what no job record names any more). */
  jobsOnDisk(): string[] {
    return fs.existsSync(this.root) ? fs.readdirSync(this.root) : [];
  }
}

/** Lines are copied into a buffer of this size and handed to the file a buffer at a time (one write per
 * chunk, not per line); a chunk is awaited when the file's buffer is full. */
const CHUNK_BYTES = 256 * 1024;
const NEWLINE = 0x0a;

/**
 * Writes NDJSON, one file per resource type, starting a new file (Type-2.ndjson, …) before one would grow
 * past maxFileBytes. Each line is encoded once, straight into the chunk that goes to the file (a stored
 * resource given as its bytes is only copied); a chunk is awaited when the file's buffer is full ('drain'),
 * so a slow disk slows the reader instead of filling memory.
 */
export class NdjsonWriter {
  private current?: {
    type: string;
    stream: fs.WriteStream;
    file: OutputFile;
    bytes: number;
  };
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  /** A file's error (it could not be opened or written), kept until the job's next step throws it. */
  private failure?: Error;
  private used = 0;
  private readonly files: OutputFile[] = [];

  constructor(
    private readonly dir: string,
    private readonly maxFileBytes: number,
  ) {}

  /**
   * Appends a resource, given as an object, as its JSON text or as the UTF-8 bytes of that text (one line:
   * JSON text has no raw newline).
   */
  async write(type: string, resource: object | string | Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const line =
      resource instanceof Uint8Array || typeof resource === 'string' ? resource : JSON.stringify(resource);
    // A string's UTF-8 length is at most three bytes a character: counted exactly only near a file's end.
    const most = typeof line === 'string' ? line.length * 3 + 1 : line.length + 1;
    const current = this.current;
    if (
      current?.type !== type ||
      (current.file.count > 0 &&
        current.bytes + most > this.maxFileBytes &&
        current.bytes + lineBytes(line) > this.maxFileBytes)
    ) {
      await this.closeFile();
      this.open(type);
    }
    if (this.used + most > CHUNK_BYTES) await this.flush();
    const open = this.current as NonNullable<NdjsonWriter['current']>;
    let bytes: number;
    if (most > CHUNK_BYTES) {
      // Larger than a chunk: its own write.
      const whole =
        typeof line === 'string' ? Buffer.from(`${line}\n`) : Buffer.concat([line, Buffer.of(NEWLINE)]);
      bytes = whole.length;
      await this.send(open, whole);
    } else {
      bytes = this.append(line);
    }
    open.bytes += bytes;
    open.file.count += 1;
  }

  /** Closes the last file and returns every file written, in order. */
  async finish(): Promise<OutputFile[]> {
    await this.closeFile();
    return this.files;
  }

  /** Stops writing (the job was cancelled or failed); the caller removes the folder. */
  abort(): void {
    this.current?.stream.destroy();
    this.current = undefined;
    this.used = 0;
  }

  private open(type: string): void {
    const part = this.files.filter((f) => f.type === type).length + 1;
    const file: OutputFile = { type, name: `${type}-${part}.ndjson`, count: 0 };
    const stream = fs.createWriteStream(path.join(this.dir, file.name), {
      flags: 'wx',
      mode: 0o600,
      highWaterMark: CHUNK_BYTES,
    });
    // Opened and written in the background: an error comes as an event, at any time, also after the job
    // was cancelled and its folder removed; unheard, it would end the process.
    stream.on('error', (err) => {
      if (this.current?.stream === stream) this.failure ??= err;
    });
    this.files.push(file);
    this.current = { type, stream, file, bytes: 0 };
  }

  /** Copies a line and its newline into the chunk, which has room for them; returns their bytes. */
  private append(line: string | Uint8Array): number {
    const start = this.used;
    let end = start;
    if (typeof line === 'string') {
      end += this.chunk.write(line, start);
    } else {
      this.chunk.set(line, start);
      end += line.length;
    }
    this.chunk[end] = NEWLINE;
    this.used = end + 1;
    return this.used - start;
  }

  /** Hands the chunk's lines to the current file; the stream keeps that buffer, so a new one is taken. */
  private async flush(): Promise<void> {
    if (this.used === 0 || this.current === undefined) return;
    const full = this.chunk.subarray(0, this.used);
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.used = 0;
    await this.send(this.current, full);
  }

  private async send(current: NonNullable<NdjsonWriter['current']>, bytes: Buffer): Promise<void> {
    if (!current.stream.write(bytes)) {
      await once(current.stream, 'drain');
    }
  }

  private async closeFile(): Promise<void> {
    const current = this.current;
    if (current === undefined) return;
    await this.flush();
    if (this.failure !== undefined) throw this.failure;
    this.current = undefined;
    current.stream.end();
    await once(current.stream, 'close');
  }
}

function lineBytes(line: string | Uint8Array): number {
  return (typeof line === 'string' ? Buffer.byteLength(line) : line.length) + 1;
}
