import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';

/** The renderer sub-package (its own package.json, so the root dependencies stay lean). */
export const APP_DIR = path.join(__dirname, 'app');
const DIST = path.join(APP_DIR, 'dist');
const LFORMS_DIST = path.join(APP_DIR, 'node_modules', 'lforms', 'dist', 'lforms');

export interface PageServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  close(): Promise<void>;
}

/** Says what to run when the pages have not been installed or built (scripts/ci/install-renderers.sh). */
export function assertPagesBuilt(): void {
  const missing = [path.join(DIST, 'index.html'), path.join(DIST, 'lforms.html'), LFORMS_DIST].filter(
    (p) => !fs.existsSync(p),
  );
  if (missing.length) {
    throw new Error(
      `The renderer pages are not built (missing ${missing.map((m) => path.relative(APP_DIR, m)).join(', ')}). ` +
        'Run scripts/ci/install-renderers.sh (Chromium, npm ci and vite build in test/renderers/app).',
    );
  }
}

/**
 * Serves the built Refero page (dist/index.html), the LHC-Forms page (dist/lforms.html) and LHC-Forms'
 * prebuilt distribution (/lforms/…) on 127.0.0.1 with an ephemeral port: the pages load nothing from
 * anywhere else.
 */
export async function startPageServer(): Promise<PageServer> {
  assertPagesBuilt();
  const app = express();
  app.use('/lforms', express.static(LFORMS_DIST));
  app.use(express.static(DIST));
  app.use((_req, res) => {
    res.status(404).end();
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
