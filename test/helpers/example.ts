/** Starts a file of examples/ as a user would (`node --import tsx`), on a free loopback port. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { freePort } from './net.js';

async function waitFor(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Starts `file` with PORT set and returns its base URL once `path` answers; killed after the test. */
export async function startExample(t: TestContext, file: string, path: string): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', file], {
    env: { ...process.env, PORT: String(port), NODE_ENV: 'development', NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}${path}`, 20_000).catch((err) => assert.fail(`${file} did not start: ${err}\n${stderr}`));
  return base;
}
