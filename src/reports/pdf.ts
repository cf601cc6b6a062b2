import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

/**
 * Prints the report's HTML to PDF with Chromium itself (`--print-to-pdf`), headless, with nothing that
 * phones home and a fresh profile that is removed afterwards. Chromium's own printing needs no browser
 * automation library at run time (the tests drive the same Chromium through playwright-core).
 */

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium with nothing that phones home (the renderer tests start it the same way). */
export const HEADLESS_FLAGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function printPdf(
  htmlFile: string,
  pdfFile: string,
  chromium = DEFAULT_CHROMIUM,
): Promise<void> {
  if (!fs.existsSync(chromium)) {
    throw new Error(`No Chromium at ${chromium}: install Debian's chromium, or set CHROMIUM_PATH`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-pdf-'));
  try {
    await promisify(execFile)(
      chromium,
      [
        '--headless',
        ...HEADLESS_FLAGS,
        `--user-data-dir=${profile}`,
        '--no-pdf-header-footer',
        `--print-to-pdf=${pdfFile}`,
        pathToFileURL(path.resolve(htmlFile)).href,
      ],
      { timeout: 120_000 },
    );
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
  if (!fs.existsSync(pdfFile) || fs.statSync(pdfFile).size === 0) {
    throw new Error('Chromium printed no PDF');
  }
}
