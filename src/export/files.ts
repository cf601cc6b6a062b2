import fs from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { fileHolds } from '../store/fileHolds';
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

  /** Whether any file of a job, partial or published, holds one of `texts`. */
  holds(jobId: string, texts: readonly string[]): boolean {
    const dir = this.jobDir(jobId);
    const files = fs.existsSync(dir)
      ? fs
          .readdirSync(dir, { recursive: true, withFileTypes: true })
          .filter((entry) => entry.isFile())
          .map((entry) => path.join(entry.parentPath, entry.name))
      : [];
    return fileHolds(files, texts);
  }

  /** Job folders on disk (to remove what no job record names any more). */
  jobsOnDisk(): string[] {
    return fs.existsSync(this.root) ? fs.readdirSync(this.root) : [];
  }
}

/** Lines are handed to the file in chunks of about this size (one write per chunk, not per line), and a
 * chunk is awaited when the file's buffer is full: a few large QuestionnaireResponses. */
const CHUNK_BYTES = 256 * 1024;

/**
 * Writes NDJSON, one file per resource type, starting a new file (Type-2.ndjson, …) before one would grow
 * past maxFileBytes. Lines are gathered into chunks; a chunk is awaited when the file's buffer is full
 * ('drain'), so a slow disk slows the reader instead of filling memory.
 */
export class NdjsonWriter {
  private current?: {
    type: string;
    stream: fs.WriteStream;
    file: OutputFile;
    bytes: number;
    chunk: string[];
    chunkBytes: number;
  };
  private readonly files: OutputFile[] = [];

  constructor(
    private readonly dir: string,
    private readonly maxFileBytes: number,
  ) {}

  /** Appends a resource, given as an object or as its JSON text (one line: JSON text has no raw newline). */
  async write(type: string, resource: object | string): Promise<void> {
    const line = `${typeof resource === 'string' ? resource : JSON.stringify(resource)}\n`;
    const bytes = Buffer.byteLength(line);
    if (
      this.current?.type !== type ||
      (this.current.bytes + bytes > this.maxFileBytes && this.current.file.count > 0)
    ) {
      await this.closeFile();
      this.open(type);
    }
    const current = this.current as NonNullable<NdjsonWriter['current']>;
    current.bytes += bytes;
    current.file.count += 1;
    current.chunk.push(line);
    current.chunkBytes += bytes;
    if (current.chunkBytes >= CHUNK_BYTES) await this.flush(current);
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
  }

  private open(type: string): void {
    const part = this.files.filter((f) => f.type === type).length + 1;
    const file: OutputFile = { type, name: `${type}-${part}.ndjson`, count: 0 };
    const stream = fs.createWriteStream(path.join(this.dir, file.name), {
      flags: 'wx',
      mode: 0o600,
      highWaterMark: CHUNK_BYTES,
    });
    this.files.push(file);
    this.current = { type, stream, file, bytes: 0, chunk: [], chunkBytes: 0 };
  }

  private async flush(current: NonNullable<NdjsonWriter['current']>): Promise<void> {
    if (current.chunk.length === 0) return;
    const text = current.chunk.join('');
    current.chunk = [];
    current.chunkBytes = 0;
    if (!current.stream.write(text)) {
      await once(current.stream, 'drain');
    }
  }

  private async closeFile(): Promise<void> {
    const current = this.current;
    if (current === undefined) return;
    this.current = undefined;
    await this.flush(current);
    current.stream.end();
    await once(current.stream, 'close');
  }
}
