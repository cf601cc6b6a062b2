import fs from 'node:fs';
import path from 'node:path';
import type { Channel, Invitation } from './channel';
import { invitationMessage } from './message';

/**
 * The development channel: one JSON file per message in a folder, named by its idempotency key
 * (`<task>.<attempt>.json`), written to a temporary file, synced and renamed into place, so a reader never
 * sees half a message and delivering the same attempt again replaces the file instead of adding one.
 * The folder is private (0700, files 0600): the messages hold national ids.
 */
export class OutboxChannel implements Channel {
  readonly name = 'outbox';

  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  static fileName(idempotencyKey: string): string {
    return `${idempotencyKey.replace(/\//g, '.')}.json`;
  }

  async deliver(invitation: Invitation): Promise<void> {
    const target = path.join(this.dir, OutboxChannel.fileName(invitation.idempotencyKey));
    const temporary = `${target}.${process.pid}.tmp`;
    const body = `${JSON.stringify(invitationMessage(invitation), null, 2)}\n`;
    const file = await fs.promises.open(temporary, 'w', 0o600);
    try {
      await file.writeFile(body);
      await file.sync();
    } finally {
      await file.close();
    }
    await fs.promises.rename(temporary, target);
    const folder = await fs.promises.open(this.dir, 'r');
    try {
      await folder.sync(); // the rename itself is durable
    } finally {
      await folder.close();
    }
  }

  async close(): Promise<void> {
    // Nothing held open between messages.
  }
}
