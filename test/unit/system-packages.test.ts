/** scripts/system-packages.mjs: what npm test and npm run bench do when a Debian package they start is missing. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../../scripts/system-packages.mjs', import.meta.url));
// Run as an unprivileged user when the suite runs as root, so the script takes its "cannot install"
// path instead of calling apt-get; the copy lives in a folder that user can read.
const unprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
let dir = '';

function ensure(args: string, path: string): { status: number | null; stdout: string; stderr: string } {
  const code = `import(${JSON.stringify(join(dir, 'system-packages.mjs'))}).then((m) => m.ensureSystemPackages(${args}))`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8', cwd: dir, env: { PATH: path }, timeout: 20_000, ...unprivileged,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `node system-packages.mjs …args`, as docs/deploy.md runs it. */
function runScript(args: string[], path: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(dir, 'system-packages.mjs'), ...args], {
    encoding: 'utf8', cwd: dir, env: { PATH: path }, timeout: 20_000, ...unprivileged,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('system packages', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tether-pkgs-'));
    chmodSync(dir, 0o755);
    copyFileSync(source, join(dir, 'system-packages.mjs'));
    chmodSync(join(dir, 'system-packages.mjs'), 0o644);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('when a wanted package is missing and it cannot install then it exits 1 naming only that package and the command to rerun', () => {
    const r = ensure(`['redis-server'], 'The benchmarks', 'npm run bench'`, '/nonexistent');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /The benchmarks need these Debian packages, which are missing: redis-server\./);
    assert.match(r.stderr, /apt-get install -y redis-server\)/);
    assert.match(r.stderr, /run npm run bench as root/);
    assert.doesNotMatch(r.stderr, /postgresql|haproxy|chromium/, 'packages not asked for are not named');
  });

  it('when no package is given then the packages the tests need are checked, worded for npm test', () => {
    // Without a PATH no command is found; packages detected by their files (PostgreSQL, Chromium) may
    // still count as present, so only the first, found by command, is certain to be named.
    const r = ensure('', '/nonexistent');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^The tests need these Debian packages, which are missing: redis-server\b/);
    assert.match(r.stderr, /run npm test as root/);
  });

  it('when asked for a package it does not know then it refuses instead of checking nothing', () => {
    const r = ensure(`['redis']`, process.env.PATH ?? '/usr/bin:/bin');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unknown system packages: redis \(known: redis-server,/);
  });

  it('when the wanted packages are present then it returns quietly', () => {
    // redis-server is on this machine: npm test has ensured it before any test runs.
    const r = ensure(`['redis-server']`, process.env.PATH ?? '/usr/bin:/bin');
    assert.deepEqual({ status: r.status, stdout: r.stdout, stderr: r.stderr }, { status: 0, stdout: '', stderr: '' });
  });

  it('when run as a script with packages named and one is missing then it exits 1 naming it and the command to rerun', () => {
    // Without a PATH no command is found: redis-server, detected by its command, is certain to be missing.
    const r = runScript(['redis-server'], '/nonexistent');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^You need these Debian packages, which are missing: redis-server\./);
    assert.match(r.stderr, /run node scripts\/system-packages\.mjs redis-server as root/);
  });

  it('when run as a script with the packages present then it says so and exits 0', () => {
    const r = runScript(['redis-server'], process.env.PATH ?? '/usr/bin:/bin');
    assert.deepEqual({ status: r.status, stdout: r.stdout, stderr: r.stderr }, { status: 0, stdout: 'present: redis-server\n', stderr: '' });
  });

  it('when run as a script with a package it does not know then it exits 2 naming the known ones', () => {
    const r = runScript(['redis'], process.env.PATH ?? '/usr/bin:/bin');
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'unknown system packages: redis (known: redis-server, postgresql, haproxy, chromium, faketime)\n');
  });
});
