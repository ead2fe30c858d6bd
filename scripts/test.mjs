#!/usr/bin/env node
// `npm test`: makes sure the real backends the tests start are installed, type-checks, lints, then runs
// every test file with Node's built-in runner, whose summary ends the output.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureSystemPackages } from './system-packages.mjs';

ensureSystemPackages();

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;

console.log('# type-check (tsc --noEmit)');
if (run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit']) !== 0) {
  console.error('type-check failed');
  process.exit(1);
}

console.log('# lint (eslint)');
// No --cache: a type-aware rule's finding in one file can change with another file, which the cache does not see.
if (run(process.execPath, ['node_modules/eslint/bin/eslint.js', '.']) !== 0) {
  console.error('lint failed');
  process.exit(1);
}

const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(p);
  }
};
walk('test');
const only = process.argv.slice(2);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.TETHER_TEST_CONCURRENCY ?? '3';
// --test-force-exit: a test that fails before closing what it opened (a server, a client) must not keep
// its file's process, and with it the run and its summary, waiting forever.
// --test-timeout bounds each file's whole run: the Chromium and HAProxy files take ≈ 100 s alone and
// went past 240 s with a second run of the suite beside them on this two-core machine.
process.exit(run(process.execPath, [
  '--conditions=tether-source', '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`,
  '--test-reporter=spec', '--test-timeout=480000', '--test-force-exit', ...selected,
]));
