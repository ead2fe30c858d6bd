/**
 * Debian's Chromium under playwright-core, as every e2e test launches it: headless, without the sandbox
 * or GPU, and with nothing that reaches the network on its own (background networking, component
 * updates, sync, QUIC). Close the browser it gives.
 * @module
 */
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    timeout: 30_000,
  });
}
