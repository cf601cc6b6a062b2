import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../src/store/embedded';

/**
 * An embedded store that the tests of one file share, in a temporary folder of its own (named by
 * `prefix`, to tell whose a folder left behind is): opened before those tests, closed and removed after
 * them. Jest's hooks set it, so a test reaches it through the returned function.
 */
export function temporaryEmbeddedStore(prefix: string): () => EmbeddedStore {
  let dir: string | undefined;
  let store: EmbeddedStore | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    store = EmbeddedStore.open(EmbeddedStore.defaultFile(dir));
  });
  afterAll(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (!store) throw new Error('the temporary store is opened in beforeAll: read it in a test');
    return store;
  };
}
