import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';

/**
 * Group commit for one SQLite database in WAL mode: commits are written without a sync of their own
 * (`synchronous = NORMAL`), and whoever needs them on disk awaits `durable()`, which resolves once one
 * fdatasync of the WAL file that began after the call has completed. Concurrent writers share that one
 * sync, and it runs on libuv's thread pool, so the event loop serves other requests meanwhile, where a
 * `synchronous = FULL` commit blocks the process for the length of its fsync.
 *
 * Why it keeps FULL's guarantee: a commit is durable once its WAL frames are on disk (recovery rebuilds
 * the WAL index from the frames whose checksums hold, up to the last commit frame), and fdatasync on any
 * descriptor of the file flushes all of the file's written pages. Checkpoints sync the WAL and the
 * database themselves in NORMAL mode, so what a checkpoint moved out of the WAL stays durable. SQLite
 * syncs the folder of a new WAL file only at its own first sync, which NORMAL leaves to the first
 * checkpoint: the folder is synced here when the WAL file is first opened.
 */
export class GroupCommit {
  private handle: fs.promises.FileHandle | undefined;
  /** The sync under way, if any: commits made after it began are not covered by it. */
  private running: Promise<void> | undefined;
  /** The sync that follows the running one, shared by every caller who came while it ran. */
  private queued: Promise<void> | undefined;

  private constructor(private readonly walFile: string) {}

  /** Switches `db` (WAL mode) to commits without their own sync; from now on `durable()` makes them durable. */
  static of(db: Database.Database): GroupCommit {
    if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') {
      throw new Error('group commit needs a database in WAL mode');
    }
    db.pragma('synchronous = NORMAL');
    return new GroupCommit(`${db.name}-wal`);
  }

  /** Resolves once every commit made before the call is on disk. */
  durable(): Promise<void> {
    if (this.running === undefined) {
      this.running = this.sync().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    // The running sync may have begun before this caller's commit: wait for the next one.
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.durable();
      });
    return this.queued;
  }

  /** Closes the WAL file (after the database was closed, which checkpoints and syncs it). */
  async close(): Promise<void> {
    await this.running?.catch(() => undefined);
    await this.handle?.close();
    this.handle = undefined;
  }

  private async sync(): Promise<void> {
    const handle = await this.wal();
    if (handle === undefined) {
      return; // no WAL file: nothing was committed since the last checkpoint removed it
    }
    await handle.datasync();
  }

  /** The WAL file, opened once: SQLite keeps it (truncating or rewriting it, never replacing it) while
   * the database is open here. */
  private async wal(): Promise<fs.promises.FileHandle | undefined> {
    if (this.handle !== undefined) {
      return this.handle;
    }
    try {
      this.handle = await fs.promises.open(this.walFile, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    // The WAL file's name must be on disk too, or a power loss can lose the file with its commits.
    const folder = await fs.promises.open(path.dirname(this.walFile), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
    return this.handle;
  }
}
