import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { HEADLESS_FLAGS } from '../../src/reports/pdf';

/** Debian's Chromium (apt-get install chromium); never a test tool's own browser download. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface HeadlessChromium {
  browser: Browser;
  close(): Promise<void>;
}

/** Headless Chromium with nothing that phones home. Playwright itself gives every launch a fresh,
 * temporary --user-data-dir (it refuses one passed in args) and removes it on close. */
export async function launchChromium(): Promise<HeadlessChromium> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `No Chromium at ${CHROMIUM}: run scripts/ci/install-renderers.sh (apt-get install chromium)`,
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...HEADLESS_FLAGS],
  });
  return {
    browser,
    close: () => browser.close(),
  };
}
