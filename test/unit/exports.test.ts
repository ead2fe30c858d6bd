/**
 * The package's public face: every subpath in package.json `exports` that has a source file resolves
 * and loads, and importing the root entry loads no driver and no framework.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | Record<string, string>>;
};

const subpaths = Object.entries(pkg.exports)
  .filter(([, target]) => typeof target === 'object')
  .map(([sub, target]) => ({ specifier: sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`, source: (target as Record<string, string>)['tether-source']! }));

const DRIVERS = ['ioredis', 'pg', 'better-sqlite3', 'express', 'fastify', 'hono', '@hono/node-server'];

/** Runs in a child: imports each URL in argv in turn, printing which node_modules packages were loaded after each. */
const PROBE = `
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const seen = new Set();
port1.on('message', (u) => seen.add(u));
register('data:text/javascript,' + encodeURIComponent(\`
  let port;
  export function initialize(data) { port = data.port; }
  export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); port.postMessage(r.url); return r; }
\`), import.meta.url, { data: { port: port2 }, transferList: [port2] });
const require = createRequire(import.meta.url);
const packages = () => {
  const urls = [...seen, ...Object.keys(require.cache).map((p) => 'file://' + p)];
  return [...new Set(urls.flatMap((u) => { const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(u); return m ? [m[1]] : []; }))].sort();
};
const report = [];
for (const url of process.argv.slice(2)) {
  await import(url);
  await new Promise((r) => setTimeout(r, 50));
  report.push(packages());
}
port1.close();
console.log(JSON.stringify(report));
`;

describe('package exports', () => {
  it('every subpath export when its source file exists then resolves to that file and loads', async () => {
    const present = subpaths.filter((s) => existsSync(join(root, s.source)));
    assert.ok(present.length >= 6, 'root, adapters and memory at least');
    for (const { specifier, source } of present) {
      assert.equal(import.meta.resolve(specifier), pathToFileURL(join(root, source)).href, specifier);
      const mod = (await import(specifier)) as Record<string, unknown>;
      assert.ok(Object.keys(mod).length > 0, `${specifier} exports something`);
    }
    const root_ = (await import(pkg.name)) as Record<string, unknown>;
    for (const name of ['createTether', 'Tether', 'MemoryStore', 'TetherError', 'ERROR_CODES', 'CHANNEL_NAMES']) assert.ok(name in root_, name);
  });

  it('root entry when imported in a fresh process then loads none of ioredis, pg, better-sqlite3, express, fastify, hono', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-exports-'));
    try {
      const probe = join(dir, 'probe.mjs');
      writeFileSync(probe, PROBE);
      // A positive control after the root: the probe must see a CommonJS and an ESM package it loads.
      const controls = [import.meta.resolve('express'), import.meta.resolve('hono')];
      const out = spawnSync(process.execPath, ['--conditions=tether-source', '--import', 'tsx', probe, import.meta.resolve(pkg.name), ...controls], {
        cwd: root, encoding: 'utf8', timeout: 60_000,
      });
      assert.equal(out.status, 0, out.stderr);
      const report = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as string[][];
      const afterRoot = report[0]!;
      const afterControls = report.at(-1)!;
      assert.deepEqual(afterRoot.filter((p) => DRIVERS.includes(p)), [], `the root entry loaded: ${afterRoot.join(', ')}`);
      assert.ok(afterControls.includes('express') && afterControls.includes('hono'), `the probe sees loaded packages: ${afterControls.join(', ')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
