/**
 * SqliteStore on a full disk (SECURITY.md F9): the app runs as its own process with its session file
 * on a real 1 MiB tmpfs volume, mounted in the process's private mount namespace (`unshare`, which
 * needs root or unprivileged user namespaces), and a ballast file fills the volume until SQLite
 * answers SQLITE_FULL.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../helpers/node-process.js';
import { freePort } from '../helpers/net.js';
import { TestClient } from '../helpers/http-client.js';
import type { Reply } from '../helpers/http-client.js';

const VOLUME_BYTES = 1024 * 1024;
const NAMESPACE = ['unshare', '--user', '--map-root-user', '--mount'];

/** The command prefix that mounts a private tmpfs at $DATA_DIR and then runs node in place. */
function onPrivateVolume(): string[] {
  try {
    execFileSync(NAMESPACE[0]!, [...NAMESPACE.slice(1), 'true'], { stdio: 'pipe' });
  } catch (err) {
    throw new Error('this test mounts a small tmpfs volume in a private mount namespace with `unshare` (util-linux); '
      + 'it needs root, or unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1): '
      + (err as Error).message, { cause: err });
  }
  return [...NAMESPACE, '--', 'sh', '-c', `mount -t tmpfs -o size=${VOLUME_BYTES} tmpfs "$DATA_DIR" && exec "$@"`, 'sh'];
}

describe('SqliteStore on a full disk', () => {
  it('volume when full then writes fail 503 STORE_UNAVAILABLE naming it, nothing is half-written, reads keep working, integrity_check is ok, and writes resume once space is freed', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-diskfull-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const app = await startApp({ script: 'test/fixtures/sqlite-diskfull-server.ts', port: await freePort(), env: { DATA_DIR: dir }, wrap: onPrivateVolume() });
    t.after(() => app.stop());
    let exited = false;
    void app.exited.then(() => { exited = true; });
    const [admin, alice, bob] = [new TestClient(app.url), new TestClient(app.url), new TestClient(app.url)];
    t.after(() => [admin, alice, bob].forEach((c) => c.close()));

    const df = await admin.request('GET', '/df');
    assert.ok(df.body.free > 0 && df.body.free <= VOLUME_BYTES, `the session file is on the small volume (free: ${df.text})`);
    assert.equal((await alice.request('POST', '/put?tag=alice&bytes=2000')).status, 200);
    assert.equal((await bob.request('POST', '/put?tag=bob-0&bytes=8000')).status, 200);
    const ballast = await admin.request('POST', '/ballast?leave=65536');
    assert.equal(ballast.status, 200, ballast.text);

    // Bob's session keeps changing until the volume has no room for the write.
    let full: Reply | undefined;
    let last = 'bob-0';
    for (let i = 1; i <= 200 && !full; i++) {
      const r = await bob.request('POST', `/put?tag=bob-${i}&bytes=8000`);
      if (r.status === 200) last = `bob-${i}`;
      else full = r;
    }
    assert.ok(full, 'the volume filled up within 200 writes');
    assert.equal(full.status, 503, full.text);
    assert.equal(full.body?.error?.code, 'STORE_UNAVAILABLE');
    assert.match(full.body.error.message, /SQLITE_FULL.*disk or volume is full/);
    assert.equal(full.headers['retry-after'], '1');

    // The failed write left nothing behind: Bob reads his last acknowledged write, Alice hers.
    assert.deepEqual((await bob.request('GET', '/get')).body, { tag: last, bytes: 8000 });
    assert.deepEqual((await alice.request('GET', '/get')).body, { tag: 'alice', bytes: 2000 });
    assert.equal((await admin.request('GET', '/integrity')).body?.result, 'ok');

    const freed = await admin.request('DELETE', '/ballast');
    assert.ok(freed.body.free > 65_536, freed.text);
    const again = await bob.request('POST', '/put?tag=bob-after&bytes=8000');
    assert.equal(again.status, 200, again.text);
    assert.deepEqual((await bob.request('GET', '/get')).body, { tag: 'bob-after', bytes: 8000 });
    assert.deepEqual((await alice.request('GET', '/get')).body, { tag: 'alice', bytes: 2000 });
    assert.equal((await admin.request('GET', '/integrity')).body?.result, 'ok');
    assert.equal(exited, false, 'the same process answered throughout');
  });
});
