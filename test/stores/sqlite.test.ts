/** SqliteStore: the shared conformance suite plus migrations, other processes' locks, several connections, the change feed and crashes. */
import { describe, it, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import { SqliteStore, SCHEMA_VERSION } from '../../src/stores/sqlite/index.js';
import { migrate } from '../../src/stores/sqlite/schema.js';
import { MIGRATIONS } from '../../src/stores/sqlite/migrations.js';
import { TieredStore } from '../../src/stores/tiered/index.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import { isSessionKey } from '../../src/core/store.js';
import { createTether } from '../../src/core/engine.js';
import { trip } from '../unit/support.js';
import { nextWarnings, warningsDuring } from '../helpers/warnings.js';
import type { SessionRecord, SessionStore } from '../../src/core/store.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import { assertMemoryFlatUnderWrites } from '../helpers/heap.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';
import { assertSweepsOnItsOwn } from '../helpers/sweep-timer.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
const WRITER = fileURLToPath(new URL('../fixtures/sqlite-writer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const files = new WeakMap<SessionStore, TempSqliteFile>();
runStoreSuite({
  name: 'sqlite',
  regenerates: true,
  reportsSwept: true,
  destroysAll: true,
  open: async (clock) => {
    const file = await tempSqliteFile();
    const store = new SqliteStore({ path: file.path, clock, sweepIntervalMs: 0 });
    files.set(store, file);
    return store;
  },
  connect: async (store, clock) => new SqliteStore({ path: files.get(store)!.path, clock, sweepIntervalMs: 0 }),
  dispose: async (store) => files.get(store)?.remove(),
});

const temps: TempSqliteFile[] = [];
const temp = async (): Promise<TempSqliteFile> => {
  const f = await tempSqliteFile();
  temps.push(f);
  return f;
};
after(async () => {
  for (const f of temps) await f.remove();
});

/** Runs the writer fixture; resolves with the acknowledged keys, how it ended, and its stderr. */
function runWriter(path: string, count: number, killAfter?: number, startAt?: number): Promise<{ keys: string[]; code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', WRITER, path, String(count), String(startAt ?? 0)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let lines = 0;
    const guard = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      lines += chunk.split('\n').length - 1;
      if (killAfter !== undefined && lines >= killAfter) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      // A line without its newline was cut by the kill mid-print: not an acknowledgement we saw.
      const keys = out.split('\n').slice(0, -1);
      resolve({ keys, code, signal, stderr });
    });
  });
}

describe('SqliteStore schema', () => {
  it('sqlite store when opening a new file then migrates once and a re-open is a no-op', async () => {
    const { path } = await temp();
    const a = new SqliteStore({ path, sweepIntervalMs: 0 });
    await a.close();
    const raw = new Database(path);
    try {
      assert.equal(raw.prepare("SELECT value FROM tether_meta WHERE name = 'schema_version'").pluck().get(), SCHEMA_VERSION);
      assert.equal(migrate(raw), 0, 'a current file runs no migration');
      const b = new SqliteStore({ path, sweepIntervalMs: 0 });
      await b.close();
      assert.equal(raw.prepare('SELECT count(*) FROM tether_meta').pluck().get(), 2);
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  it('sqlite store when a version-1 file is opened then adds the stamp column, and change rows without a stamp still report their key', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const raw = new Database(path);
    try {
      // The file as the first release left it, with a change row already in the log.
      raw.exec('CREATE TABLE tether_meta (name TEXT PRIMARY KEY NOT NULL, value ANY) STRICT');
      raw.exec(MIGRATIONS[0]!.sql);
      raw.prepare("INSERT INTO tether_meta (name, value) VALUES ('schema_version', 1)").run();
      raw.prepare('INSERT INTO tether_changes (key, at) VALUES (?, ?)').run('before', Date.now());
      const a = new SqliteStore({ path, clock, sweepIntervalMs: 0, changePollMs: 60_000 });
      const seen: Array<[string, string | undefined]> = [];
      const off = a.subscribe((key, stamp) => seen.push([key, stamp]));
      try {
        assert.equal(raw.prepare("SELECT value FROM tether_meta WHERE name = 'schema_version'").pluck().get(), SCHEMA_VERSION);
        assert.equal(raw.prepare('SELECT stamp FROM tether_changes WHERE key = ?').pluck().get('before'), null);
        // A process still on the first release logs its writes without a stamp.
        raw.prepare('INSERT INTO tether_changes (key, at) VALUES (?, ?)').run('old writer', Date.now());
        const rec = makeRecord(clock, { key: 'new writer' });
        const b = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
        await b.set(rec, 0);
        await b.close();
        a.flushChanges();
        assert.deepEqual(seen, [['old writer', undefined], ['new writer', `1:${rec.expiresAt}`]]);
      } finally {
        off();
        await a.close();
      }
    } finally {
      raw.close();
    }
  });

  it('sqlite store when a file has a newer schema version then refuses to open with STORE_UNAVAILABLE', async () => {
    const { path } = await temp();
    await new SqliteStore({ path, sweepIntervalMs: 0 }).close();
    const raw = new Database(path);
    raw.prepare("UPDATE tether_meta SET value = ? WHERE name = 'schema_version'").run(SCHEMA_VERSION + 1);
    raw.close();
    assert.throws(() => new SqliteStore({ path }), { code: 'STORE_UNAVAILABLE', message: /newer than this Tether understands/ });
  });

  it('sqlite store when three processes open one new file at once then all succeed and the schema is applied once', async () => {
    const { path } = await temp();
    // A common start time past the children's start-up, so their opens (and migrations) collide.
    const startAt = Date.now() + 2_500;
    const runs = await Promise.all([1, 2, 3].map(() => runWriter(path, 20, undefined, startAt)));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    await using store = new SqliteStore({ path, sweepIntervalMs: 0 });
    assert.equal(await store.count(), 60);
    for (const r of runs) for (const key of r.keys) assert.ok(await store.get(key), 'every acknowledged key is present');
  });
});

describe('SqliteStore options', () => {
  it('sqlite store sweep timer when sweepIntervalMs passes then a timed-out session is deleted and reported without a call to sweep()', async () => {
    const file = await tempSqliteFile();
    try {
      await assertSweepsOnItsOwn((clock, sweepIntervalMs) => new SqliteStore({ path: file.path, clock, sweepIntervalMs }));
    } finally {
      await file.remove();
    }
  });

  it('sqlite store when given an unknown, mistyped or missing option then throws OPTIONS_INVALID', () => {
    assert.throws(() => new SqliteStore({ path: ':memory:', busyTimeout: 1 } as never), { code: 'OPTIONS_INVALID', message: /busyTimeout is not an option/ });
    assert.throws(() => new SqliteStore({ path: ':memory:', synchronous: 'OFF' as never }), { code: 'OPTIONS_INVALID', message: /synchronous must be one of "NORMAL", "FULL"/ });
    assert.throws(() => new SqliteStore({} as never), { code: 'OPTIONS_INVALID', message: /path is required/ });
    assert.throws(() => new SqliteStore({ path: '' }), { code: 'OPTIONS_INVALID', message: /path must be a non-empty string/ });
  });

  it('sqlite store when a timeout or interval is over 2^31 - 1 ms then throws OPTIONS_INVALID, and at the bound it is accepted', async () => {
    for (const key of ['busyTimeoutMs', 'sweepIntervalMs', 'changePollMs'] as const) {
      assert.throws(() => new SqliteStore({ path: ':memory:', [key]: 2_147_483_648 }), { code: 'OPTIONS_INVALID', message: new RegExp(`${key} must be .*at most 2147483647`) });
    }
    await new SqliteStore({ path: ':memory:', busyTimeoutMs: 2_147_483_647, sweepIntervalMs: 2_147_483_647, changePollMs: 2_147_483_647 }).close();
  });

  it('sqlite store when the folder of path is missing then creates it and applies synchronous FULL', async () => {
    const { dir } = await temp();
    const path = join(dir, 'a', 'b', 'sessions.db');
    const store = new SqliteStore({ path, synchronous: 'FULL', sweepIntervalMs: 0 });
    assert.equal(store.synchronous, 'FULL');
    await store.close();
    assert.ok(existsSync(path));
    const normal = new SqliteStore({ path, sweepIntervalMs: 0 });
    assert.equal(normal.synchronous, 'NORMAL');
    await normal.close();
  });

  it('sqlite store when another connection holds the write lock past busyTimeoutMs then rejects with STORE_UNAVAILABLE and recovers', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, busyTimeoutMs: 50, sweepIntervalMs: 0 });
    const raw = new Database(path);
    try {
      const rec = makeRecord(clock);
      raw.exec('BEGIN IMMEDIATE');
      await assert.rejects(store.set(rec, 0), (err: Error & { code?: string; cause?: { code?: string } }) =>
        err.code === 'STORE_UNAVAILABLE' && err.cause?.code === 'SQLITE_BUSY' && /busyTimeoutMs/.test(err.message));
      assert.equal(await store.get(rec.key), null, 'reads still work while the lock is held');
      raw.exec('COMMIT');
      assert.deepEqual(await store.set(rec, 0), { ok: true });
    } finally {
      raw.close();
      await store.close();
    }
  });

  it('sqlite store when another connection holds the write lock under a stream of writes then each waits at most busyTimeoutMs: memory stays flat', async (t) => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, busyTimeoutMs: 1_000, sweepIntervalMs: 0 });
    const raw = new Database(path);
    try {
      const rec = makeRecord(clock, { data: JSON.stringify({ blob: 'x'.repeat(1_000) }) });
      await store.set(rec, 0);
      raw.exec('BEGIN IMMEDIATE');
      await assertMemoryFlatUnderWrites(t, store, rec, 'while the lock was held');
      raw.exec('COMMIT');
      assert.equal(await store.touch(rec.key, rec.expiresAt + 1, rec.lastSeenAt), true);
    } finally {
      if (raw.inTransaction) raw.exec('COMMIT');
      raw.close();
      await store.close();
    }
  });
});

/**
 * Another process that takes the file's write lock (BEGIN IMMEDIATE), writes, and holds it `holdMs`
 * before committing, or until `release()` is called, whichever comes first. Resolves once the lock is
 * held; `released` resolves when the child committed.
 */
function holdWriteLock(path: string, holdMs: number): Promise<LockHolder> {
  const script = `const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    db.prepare("INSERT INTO tether_meta (name, value) VALUES ('held', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1").run();
    process.stdout.write('held\\n');
    let done = false;
    const release = () => { if (done) return; done = true; db.exec('COMMIT'); db.close(); process.stdout.write('released\\n'); process.stdin.destroy(); };
    const timer = setTimeout(release, Number(process.argv[2]));
    process.stdin.on('data', () => { clearTimeout(timer); release(); });`;
  return holdLock(process.execPath, ['-e', script, path, String(holdMs)], holdMs + 20_000);
}

/**
 * Another process caught rebuilding the WAL index, as SQLite does when it finds the index damaged (a
 * process died while updating it): it holds the index's write, checkpoint and recovery locks (bytes
 * 120-122 of the -shm file, as SQLite's recovery does) with the index header cleared, until `release()`
 * is called. A reader meanwhile gets SQLITE_BUSY_RECOVERY; once the locks are free, the next reader
 * rebuilds the index from the WAL itself. (Another process's lock on the whole file, locking_mode
 * EXCLUSIVE, cannot happen to an open store: its connection holds a shared lock on the file for as long
 * as it is open.) No SQLite call holds these locks for as long as a test needs, and Node has no call for
 * POSIX record locks (fcntl), hence Perl, which every Debian and Ubuntu system has (struct flock as on
 * 64-bit Linux).
 */
function holdRecoveryLocks(path: string): Promise<LockHolder> {
  const script = `use strict; use Fcntl qw(O_RDWR SEEK_SET F_SETLK F_WRLCK F_UNLCK);
    sysopen(my $fh, "$ARGV[0]-shm", O_RDWR) or die "open: $!";
    my $lock = pack('s s x4 q q i x4', F_WRLCK, SEEK_SET, 120, 3, 0);
    fcntl($fh, F_SETLK, $lock) or die "lock: $!";
    sysseek($fh, 0, SEEK_SET) and syswrite($fh, "\\0" x 96) == 96 or die "clear: $!";
    $| = 1; print "held\\n";
    <STDIN>;
    my $unlock = pack('s s x4 q q i x4', F_UNLCK, SEEK_SET, 120, 3, 0);
    fcntl($fh, F_SETLK, $unlock) or die "unlock: $!";
    print "released\\n";`;
  return holdLock('perl', ['-e', script, path], 60_000);
}

interface LockHolder {
  /** Resolves once the holder let go. */
  released: Promise<void>;
  /** Tells the holder to let go; calling it again is harmless. */
  release: () => void;
}

/**
 * Runs a lock holder: a process that prints `held` once it holds its lock, lets go when sent a line (or
 * ends), and prints `released` once it has. Resolves once the lock is held; killed after `guardMs`.
 */
async function holdLock(command: string, args: string[], guardMs: number): Promise<LockHolder> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const guard = setTimeout(() => child.kill('SIGKILL'), guardMs);
  let out = '';
  let stderr = '';
  const onOutput: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const check of onOutput) check();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.on('error', (err) => (stderr += err.message));
  // Told to let go after it ended: nothing to do.
  child.stdin.on('error', () => {});
  const ended = new Promise<void>((resolve) => child.on('close', () => {
    clearTimeout(guard);
    resolve();
  }));
  const line = (text: string) => new Promise<void>((resolve, reject) => {
    const seen = () => out.includes(`${text}\n`);
    onOutput.push(() => {
      if (seen()) resolve();
    });
    void ended.then(() => (seen() ? resolve() : reject(new Error(`lock holder ended before '${text}': ${stderr}`))));
  });
  const held = line('held');
  const released = line('released');
  // Awaited by the caller only after a release; a holder that never held is reported by `held`.
  released.catch(() => {});
  await held;
  let told = false;
  return {
    released,
    release: () => {
      if (told) return;
      told = true;
      child.stdin.end('release\n');
    },
  };
}

/**
 * Ticks every 10 ms until stopped; stopping returns the largest gap seen between ticks (the event loop's
 * longest stall). Stopping again is harmless, so a test's `finally` can make sure the timer is gone.
 * The tests bound the gap well under their busyTimeoutMs (a loop blocked by SQLite stalls that long),
 * and well over what a loaded machine adds by itself (a couple of hundred milliseconds at worst).
 */
function watchLoop(): () => number {
  let last = performance.now();
  let worst = 0;
  let timer: NodeJS.Timeout | undefined = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 10);
  return () => {
    if (timer) worst = Math.max(worst, performance.now() - last);
    clearInterval(timer);
    timer = undefined;
    return worst;
  };
}

describe('SqliteStore waiting for another process’s lock', () => {
  it('sqlite store when another process holds the write lock for a while then writes wait without blocking the event loop and commit in order once it is released', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, busyTimeoutMs: 3_000, sweepIntervalMs: 0 });
    const heard: string[] = [];
    const off = store.subscribe((key) => heard.push(key));
    let stop = (): number => 0;
    let release = (): void => {};
    try {
      const rec = makeRecord(clock, { userId: 'erin' });
      const other = makeRecord(clock, { userId: 'erin' });
      await store.set(rec, 0);
      heard.length = 0;
      // Held until told: under load, a holder that let go on its own timer could do so before the
      // later writes below were even made.
      const holder = await holdWriteLock(path, 10_000);
      release = holder.release;
      stop = watchLoop();
      const started = performance.now();
      // One turn's group commit, then, while it waits, writes of later turns and a read.
      const batch = Promise.all([store.set({ ...rec, version: 2, data: '"2"' }, 1), store.set(other, 0)]);
      let answeredAt = 0;
      void batch.then(() => (answeredAt = performance.now()), () => {});
      await new Promise((r) => setTimeout(r, 100));
      const readStarted = performance.now();
      assert.deepEqual(await store.get(rec.key), rec, 'a read is answered while the write waits');
      assert.ok(performance.now() - readStarted < 100, 'and at once');
      const later = store.set({ ...rec, version: 3, data: '"3"' }, 2);
      const removed = store.destroyByUser('erin', { except: [rec.key] });
      await new Promise((r) => setTimeout(r, 300));
      const releasing = performance.now();
      release();
      assert.deepEqual(await batch, [{ ok: true }, { ok: true }]);
      assert.deepEqual(await later, { ok: true }, 'a later write waits behind the first, so it sees its version');
      assert.equal(await removed, 1, 'the create queued before destroyByUser was committed first');
      const worst = stop();
      await holder.released;
      assert.ok(answeredAt >= releasing, `the writes were answered once the lock was released (${(answeredAt - started).toFixed(0)} ms)`);
      assert.ok(worst < 400, `the event loop kept turning while the writes waited (longest gap ${worst.toFixed(0)} ms)`);
      assert.equal((await store.get(rec.key))?.data, '"3"');
      assert.equal(await store.get(other.key), null);
      assert.deepEqual(heard, [rec.key, other.key, rec.key, other.key], 'each change reported after its commit, in order');
    } finally {
      stop();
      release();
      off();
      await store.close();
    }
  });

  it('sqlite store when another process holds the write lock past busyTimeoutMs then the write fails with STORE_UNAVAILABLE at about that time, and close waits for a later write, without blocking the event loop', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, busyTimeoutMs: 500, sweepIntervalMs: 0 });
    const [rec, alongside, late] = [makeRecord(clock), makeRecord(clock), makeRecord(clock)];
    const { released, release } = await holdWriteLock(path, 10_000);
    const stop = watchLoop();
    try {
      const started = performance.now();
      const beside = store.set(alongside, 0);
      await assert.rejects(store.set(rec, 0), (err: Error & { code?: string; cause?: { code?: string } }) =>
        err.code === 'STORE_UNAVAILABLE' && err.cause?.code === 'SQLITE_BUSY' && /busyTimeoutMs/.test(err.message));
      const elapsed = performance.now() - started;
      await assert.rejects(beside, { code: 'STORE_UNAVAILABLE' }, 'the whole group commit failed');
      assert.ok(elapsed >= 450 && elapsed < 1_000, `failed after ${elapsed.toFixed(0)} ms`);
      // A write waits busyTimeoutMs from when it is first tried: this one outlasts the lock, released
      // while it waits.
      const last = store.set(late, 0);
      await new Promise((r) => setTimeout(r, 100));
      release();
      await store.close();
      assert.deepEqual(await last, { ok: true }, 'close waited for the write to commit');
      const worst = stop();
      await released;
      assert.ok(worst < 350, `the event loop kept turning while the writes waited (longest gap ${worst.toFixed(0)} ms)`);
    } finally {
      stop();
      await store.close();
    }
    await using again = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    assert.deepEqual(await again.get(late.key), late);
    assert.equal(await again.get(rec.key), null);
    assert.deepEqual(await again.set(rec, 0), { ok: true }, 'writes go through once the lock is free');
  });
});

describe('SqliteStore under an engine, with their default waits', () => {
  it('sqlite store when another process holds the write lock past the engine\'s storeTimeoutMs during a login then the 503 changed nothing: the old cookie keeps its session after the lock is freed', { timeout: 30_000 }, async () => {
    const { path } = await temp();
    const store = new SqliteStore({ path, sweepIntervalMs: 0 });
    await using tether = createTether<{ cart: string[] }>({ store, secrets: ['a-test-secret-of-enough-length-0123'] });
    const shopping = await trip(tether, undefined, (s) => s.set('cart', ['mug', 'tea']));
    const { released, release } = await holdWriteLock(path, 3_000);
    try {
      const started = performance.now();
      await assert.rejects(trip(tether, shopping.cookie, (s) => s.login('alice')), { code: 'STORE_UNAVAILABLE' });
      assert.ok(performance.now() - started < 2_500, 'answered within storeTimeoutMs');
    } finally {
      release();
    }
    await released;
    // Past the time the store would have gone on waiting before: the login failed, so it never commits.
    await new Promise((r) => setTimeout(r, 1_500));
    const back = await trip(tether, shopping.cookie, () => {}, 'GET');
    assert.equal(back.session.isNew, false, 'the session the login failed on is still there');
    assert.deepEqual(back.session.get('cart'), ['mug', 'tea']);
    assert.equal(back.session.userId, null);
    assert.deepEqual(await tether.listUserSessions('alice'), [], 'and no session of the user was made');
  });

  it('engine when its store may wait as long as storeTimeoutMs or longer then it warns that a write answered 503 may still commit', async (t) => {
    const seen = warningsDuring(t);
    const { path } = await temp();
    await using quick = createTether({ store: new SqliteStore({ path, sweepIntervalMs: 0 }), secrets: ['a-test-secret-of-enough-length-0123'] });
    await nextWarnings();
    assert.deepEqual(seen.filter((w) => w.code === 'TETHER_STORE_OUTWAITS_DEADLINE'), [], 'not with the defaults');
    await using slow = createTether({ store: new SqliteStore({ path, busyTimeoutMs: 5_000, sweepIntervalMs: 0 }), secrets: ['a-test-secret-of-enough-length-0123'] });
    await nextWarnings();
    const warned = seen.filter((w) => w.code === 'TETHER_STORE_OUTWAITS_DEADLINE');
    assert.equal(warned.length, 1);
    assert.match(warned[0]!.message, /5000 ms.*storeTimeoutMs \(2000 ms\)/);
    void quick;
    void slow;
  });
});

describe('SqliteStore reading while another process rebuilds the WAL index', () => {
  it('sqlite store when another process is rebuilding the WAL index then reads wait without blocking the event loop and are answered once it is done', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, busyTimeoutMs: 5_000, sweepIntervalMs: 0 });
    let stop = (): number => 0;
    let release = (): void => {};
    try {
      const rec = makeRecord(clock, { userId: 'fay' });
      await store.set(rec, 0);
      const holder = await holdRecoveryLocks(path);
      release = holder.release;
      stop = watchLoop();
      let answeredAt = 0;
      const reads = Promise.allSettled([store.get(rec.key), store.listByUser('fay'), store.count()]);
      void reads.then(() => (answeredAt = performance.now()));
      // The holder lets go only when told, and is told from this event loop: a read that waited inside
      // SQLite, blocking the loop, would hold up its own release until busyTimeoutMs.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(answeredAt, 0, 'no read was answered while the index was being rebuilt');
      const releasing = performance.now();
      release();
      assert.deepEqual(await reads, [rec, [rec], 1].map((value) => ({ status: 'fulfilled', value })));
      assert.ok(answeredAt >= releasing, 'the reads were answered once the holder was told to let go');
      const worst = stop();
      await holder.released;
      assert.ok(worst < 400, `the event loop kept turning while the reads waited (longest gap ${worst.toFixed(0)} ms)`);
    } finally {
      stop();
      release();
      await store.close();
    }
  });

  it('sqlite store when another process rebuilds the WAL index past busyTimeoutMs then a read fails with STORE_UNAVAILABLE at about that time without blocking the event loop, and the next read after it is done rebuilds the index', { timeout: 30_000 }, async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, busyTimeoutMs: 1_000, sweepIntervalMs: 0 });
    let stop = (): number => 0;
    let release = (): void => {};
    try {
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      const holder = await holdRecoveryLocks(path);
      release = holder.release;
      stop = watchLoop();
      const started = performance.now();
      await assert.rejects(store.get(rec.key), (err: Error & { code?: string; cause?: { code?: string } }) =>
        err.code === 'STORE_UNAVAILABLE' && err.cause?.code === 'SQLITE_BUSY_RECOVERY' && /busyTimeoutMs/.test(err.message));
      const elapsed = performance.now() - started;
      const worst = stop();
      assert.ok(elapsed >= 1_000 && elapsed < 2_500, `failed after ${elapsed.toFixed(0)} ms`);
      assert.ok(worst < 400, `the event loop kept turning while the read waited (longest gap ${worst.toFixed(0)} ms)`);
      release();
      await holder.released;
      assert.deepEqual(await store.get(rec.key), rec, 'nothing of the WAL was lost');
    } finally {
      stop();
      release();
      await store.close();
    }
  });
});

describe('SqliteStore across connections', () => {
  /**
   * Two stores on one new file sharing a clock, as two processes open it: `a` with `options`, `b` a
   * plain writer. Both are closed, their subscriptions with them, when the test ends.
   */
  async function twoStores(t: TestContext, options: { changePollMs?: number } = {}): Promise<{ path: string; clock: ManualClock; a: SqliteStore; b: SqliteStore }> {
    const { path } = await temp();
    const clock = new ManualClock();
    const a = new SqliteStore({ path, clock, sweepIntervalMs: 0, ...options });
    const b = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    t.after(async () => {
      await a.close();
      await b.close();
    });
    return { path, clock, a, b };
  }

  it('two stores on one file when both write then each sees the other’s writes and CAS conflicts', async (t) => {
    const { clock, a, b } = await twoStores(t);
    const rec = makeRecord(clock, { userId: 'carol' });
    assert.deepEqual(await a.set(rec, 0), { ok: true });
    assert.deepEqual(await b.get(rec.key), rec);
    assert.deepEqual(await b.set({ ...rec, version: 2, data: '"b"' }, 1), { ok: true });
    assert.deepEqual(await a.set({ ...rec, version: 2, data: '"a"' }, 1), { ok: false, current: 2 });
    assert.equal((await a.get(rec.key))?.data, '"b"');
    assert.deepEqual((await a.listByUser('carol')).map((r) => r.key), [rec.key]);
    assert.equal(await b.destroyByUser('carol'), 1);
    assert.equal(await a.get(rec.key), null);
  });

  it('change feed when another connection sets, touches and destroys then reports each, and own writes at once', async (t) => {
    const { clock, a, b } = await twoStores(t, { changePollMs: 20 });
    const seen: string[] = [];
    a.subscribe((key) => seen.push(key));
    const rec = makeRecord(clock);
    await b.set(rec, 0);
    await b.touch(rec.key, clock.now() + 5_000, clock.now());
    await b.destroy(rec.key);
    await b.destroy(rec.key); // a no-op destroy changes nothing and reports nothing
    for (let i = 0; i < 250 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, [rec.key, rec.key, rec.key]);

    const own = makeRecord(clock);
    await a.set(own, 0);
    assert.deepEqual(seen.slice(3), [own.key], 'own write reported before set resolved');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, 4, 'the poll does not report an own write a second time');
  });

  it('flushChanges when another connection committed then delivers its change synchronously', async (t) => {
    const { clock, a, b } = await twoStores(t, { changePollMs: 60_000 });
    const seen: string[] = [];
    a.subscribe((key) => seen.push(key));
    const rec = makeRecord(clock);
    await b.set(rec, 0);
    assert.deepEqual(seen, []);
    a.flushChanges();
    assert.deepEqual(seen, [rec.key]);
    a.flushChanges();
    assert.deepEqual(seen, [rec.key], 'an idle flush delivers nothing new');
  });

  it('fence when more changes wait than one poll reads then resolves false, and true once a later poll delivered the rest', async (t) => {
    const { path, clock, a, b } = await twoStores(t, { changePollMs: 60_000 });
    const raw = new Database(path);
    t.after(() => raw.close());
    let seen = 0;
    let last = '';
    a.subscribe((key) => {
      seen++;
      last = key;
    });
    // Another process's 100,000 changes (one poll's worth), then the write a reader waits for.
    raw.prepare(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
      INSERT INTO tether_changes (key, at) SELECT 'other' || i, ? FROM n`).run(Date.now());
    const rec = makeRecord(clock);
    await b.set(rec, 0);
    assert.equal(await a.fence(), false, 'the write is not delivered yet, so the fence cannot vouch for it');
    assert.equal(seen, 100_000);
    assert.equal(await a.fence(), true);
    assert.deepEqual([seen, last], [100_001, rec.key]);
    assert.equal(await a.fence(), true, 'an idle fence');
  });

  it('change feed when rows it had not read were trimmed then calls onResync', async (t) => {
    const { path, clock, a, b } = await twoStores(t, { changePollMs: 60_000 });
    let lost = 0;
    a.subscribe(() => {}, { onResync: () => lost++ });
    const raw = new Database(path);
    t.after(() => raw.close());
    await b.set(makeRecord(clock), 0);
    // What a trim by another process does once rows pass the retention window.
    raw.exec("DELETE FROM tether_changes; UPDATE tether_meta SET value = (SELECT seq FROM sqlite_sequence WHERE name = 'tether_changes') WHERE name = 'changes_trimmed_through'");
    a.flushChanges();
    assert.equal(lost, 1);
  });
});

describe('SqliteStore group commit', () => {
  /** WAL frames written since the last TRUNCATE checkpoint (24-byte frame headers, 4 KiB pages). */
  const walFrames = (raw: BetterSqlite3.Database): number => (raw.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0]!.log;

  it('writes made in one turn when committed then share one transaction, each answers for itself, and all are stored', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    const raw = new Database(path);
    try {
      const recs = Array.from({ length: 8 }, () => makeRecord(clock));
      for (const r of recs) await store.set(r, 0);
      raw.pragma('wal_checkpoint(TRUNCATE)');
      // One at a time: a commit each.
      for (const r of recs) await store.set({ ...r, version: 2, data: '"one"' }, 1);
      const sequential = walFrames(raw);
      raw.pragma('wal_checkpoint(TRUNCATE)');
      // In one turn: one commit for all, a conflict among them answered as such.
      const answers = await Promise.all([
        ...recs.map((r) => store.set({ ...r, version: 3, data: '"batch"' }, 2)),
        store.set({ ...recs[0]!, version: 2, data: '"stale"' }, 1),
      ]);
      const batched = walFrames(raw);
      assert.deepEqual(answers, [...recs.map(() => ({ ok: true })), { ok: false, current: 3 }], 'the stale write runs after the one queued before it');
      for (const r of recs) assert.equal((await store.get(r.key))?.data, '"batch"');
      assert.ok(batched < sequential / 2, `one commit writes fewer WAL frames: ${batched} batched against ${sequential} one at a time`);
    } finally {
      raw.close();
      await store.close();
    }
  });

  it('a regeneration that fails in a batch then only it is rolled back, and the writes around it commit', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    await using store = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    const [a, b, taken] = [makeRecord(clock, { userId: 'u' }), makeRecord(clock), makeRecord(clock)];
    await store.set(a, 0);
    await store.set(taken, 0);
    const ended = { ...a, version: 2, data: '"x"', expiresAt: clock.now() - 1, absoluteExpiresAt: clock.now() - 1 };
    const collide = { ...makeRecord(clock, { userId: 'u' }), key: taken.key };
    const [before, regen, after] = await Promise.allSettled([
      store.set(b, 0),
      store.regenerate(ended, 1, collide),
      store.set({ ...taken, version: 2, data: '"after"' }, 1),
    ]);
    assert.deepEqual(before, { status: 'fulfilled', value: { ok: true } });
    assert.equal(regen.status, 'rejected');
    assert.equal(regen.reason.code, 'SESSION_CONFLICT');
    assert.deepEqual(after, { status: 'fulfilled', value: { ok: true } });
    assert.deepEqual(await store.get(a.key), a, 'the refused regeneration did not end the old record');
    assert.deepEqual(await store.get(b.key), b);
    assert.equal((await store.get(taken.key))?.data, '"after"');
  });

  it('writes made in one turn then keep their order, other writes and close commit what is queued first, and a read in that turn sees what was acknowledged', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    await using store = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    const heard: string[] = [];
    store.subscribe((key, stamp) => heard.push(`${key}${stamp ? ' ' + stamp : ''}`));
    const rec = makeRecord(clock, { userId: 'dave' });
    const other = makeRecord(clock, { userId: 'dave' });
    const late = makeRecord(clock);
    await store.set(rec, 0);
    heard.length = 0;
    const set = store.set({ ...rec, version: 2, data: '"2"' }, 1);
    const gone = store.destroy(rec.key);
    const made = store.set(other, 0);
    assert.equal((await store.get(rec.key))?.data, rec.data, 'a read in the same turn sees the acknowledged version');
    // destroyByUser runs at once, after the writes queued before it.
    assert.equal(await store.destroyByUser('dave'), 1, 'the queued create was committed first, then removed');
    assert.deepEqual(await set, { ok: true });
    await gone;
    assert.deepEqual(await made, { ok: true });
    assert.equal(await store.get(rec.key), null);
    assert.equal(await store.get(other.key), null);
    assert.deepEqual(heard, [`${rec.key} 2:${rec.expiresAt}`, rec.key, `${other.key} 1:${other.expiresAt}`, other.key],
      'subscribers hear each change once it committed, in order');
    const queued = store.set(late, 0);
    await store.close();
    assert.deepEqual(await queued, { ok: true }, 'close commits what is queued');
    await using again = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    assert.deepEqual(await again.get(late.key), late);
  });
});

describe('SqliteStore sweep and count', () => {
  it('sweep when change rows are past the retention window then trims them without disturbing an up-to-date subscriber', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const a = new SqliteStore({ path, clock, sweepIntervalMs: 0, changePollMs: 60_000 });
    const b = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    const raw = new Database(path);
    try {
      const old = Date.now() - 120_000;
      for (let i = 0; i < 3; i++) raw.prepare('INSERT INTO tether_changes (key, at) VALUES (?, ?)').run(`old${i}`, old);
      const seen: string[] = [];
      let resyncs = 0;
      const off = a.subscribe((key) => seen.push(key), { onResync: () => resyncs++ });
      await b.sweep();
      assert.equal(raw.prepare('SELECT count(*) FROM tether_changes').pluck().get(), 0);
      assert.equal(raw.prepare("SELECT value FROM tether_meta WHERE name = 'changes_trimmed_through'").pluck().get(), 3);
      const rec = makeRecord(clock);
      await b.set(rec, 0);
      a.flushChanges();
      assert.deepEqual(seen, [rec.key]);
      assert.equal(resyncs, 0);
      off();
    } finally {
      raw.close();
      await a.close();
      await b.close();
    }
  });

  it('sweep when more expired records than one batch then removes them all and count sees only live ones', async () => {
    const clock = new ManualClock();
    await using store = new SqliteStore({ path: ':memory:', clock, sweepIntervalMs: 0 });
    for (let i = 0; i < 1_200; i++) await store.set(makeRecord(clock, { expiresAt: clock.now() + 10 }), 0);
    const live = makeRecord(clock);
    await store.set(live, 0);
    assert.equal(await store.count(), 1_201);
    clock.advance(10);
    assert.equal(await store.count(), 1);
    assert.equal(await store.sweep(), 1_200);
    assert.equal(await store.sweep(), 0);
    assert.ok(await store.get(live.key));
  });
  it('sweep when it deletes several batches then other work runs between them, not only after the last', async () => {
    const clock = new ManualClock();
    await using store = new SqliteStore({ path: ':memory:', clock, sweepIntervalMs: 0 });
    for (let i = 0; i < 1_600; i++) await store.set(makeRecord(clock, { expiresAt: clock.now() + 10 }), 0);
    clock.advance(10);
    const reported: number[] = [];
    store.onSwept((batch) => reported.push(batch.length));
    // Another request's work, queued as the sweep starts: it must not wait for all four transactions.
    let reportedBeforeIt = -1;
    setImmediate(() => { reportedBeforeIt = reported.length; });
    assert.equal(await store.sweep(), 1_600);
    assert.deepEqual(reported, [500, 500, 500, 100]);
    assert.equal(reportedBeforeIt, 1);
  });
});

describe('SqliteStore destroyAll', () => {
  it('sqlite store when another store on the same file runs destroyAll then it and its tier hear every removed key, without a stamp', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const a = new SqliteStore({ path, clock, sweepIntervalMs: 0, changePollMs: 20 });
    // 'eventual': a hit is served from the tier's copy with no fence, so only the feed can drop it.
    const tier = new TieredStore({ shared: a, clock, consistency: 'eventual' });
    const b = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    const heard = new Map<string, string | undefined>();
    const off = a.subscribe((key, stamp) => heard.set(key, stamp));
    try {
      const sessions = Array.from({ length: 1_200 }, (_, i) => makeRecord(clock, { userId: i % 3 === 0 ? `u${i % 7}` : null }));
      const context = makeRecord(clock, { key: `user:${makeRecord(clock).key}` });
      await Promise.all([...sessions, context].map((r) => tier.set(r, 0)));
      for (const r of [...sessions, context]) assert.deepEqual(await tier.get(r.key), r);
      const hits = tier.stats().hits;
      assert.deepEqual(await tier.get(sessions[0]!.key), sessions[0], 'copies are served from the tier');
      assert.equal(tier.stats().hits, hits + 1);
      heard.clear();

      assert.equal(await b.destroyAll(), sessions.length);
      for (let i = 0; i < 250 && heard.size < sessions.length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(heard.size, sessions.length, 'every removed session reported to the other store');
      assert.ok(!heard.has(context.key), 'the user context was not removed, so not reported');
      for (const stamp of heard.values()) assert.equal(stamp, undefined);
      for (const r of sessions) assert.equal(await tier.get(r.key), null, r.key);
      assert.deepEqual(await tier.listByUser('u0'), []);
      assert.deepEqual(await tier.get(context.key), context, 'the user context stays, in the tier and the file');
      assert.deepEqual(await b.get(context.key), context);
    } finally {
      off();
      await tier.close();
      await b.close();
    }
  });

  it('sqlite store when session keys sort on both sides of the user contexts then destroyAll removes exactly those isSessionKey names', async () => {
    const clock = new ManualClock();
    await using store = new SqliteStore({ path: ':memory:', clock, sweepIntervalMs: 0 });
    const keys = ['-a', '0a', 'Ua', 'USER:a', 'user', 'user9', 'user;', 'user;a', 'userA', 'user_a', 'users', 'v', 'zz',
      'user:', 'user:a', 'user:zz', 'user::'];
    for (const key of keys) assert.deepEqual(await store.set(makeRecord(clock, { key }), 0), { ok: true });
    const sessions = keys.filter(isSessionKey);
    assert.equal(await store.destroyAll(), sessions.length);
    for (const key of keys) assert.equal((await store.get(key)) === null, isSessionKey(key), key);
  });

  it('sqlite store when destroyAll removes more sessions than one transaction holds then each batch commits and is reported on its own, and a session inserted meanwhile with an earlier created_at is removed too', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    const raw = new Database(path);
    const sessionsLeft = raw.prepare('SELECT count(*) FROM tether_sessions').pluck();
    const left: number[] = [];
    const late = makeRecord(clock, { userId: 'late' });
    const off = store.subscribe(() => {
      // Each report comes once its transaction committed: another connection sees what is left then.
      const n = sessionsLeft.get() as number;
      if (left.at(-1) === n) return;
      left.push(n);
      // Another process inserts a session between two batches, created before the call (as a
      // regeneration keeps the session's age).
      if (left.length === 1) {
        raw.prepare(`INSERT INTO tether_sessions (key, data, version, user_id, created_at, last_seen_at, expires_at, absolute_expires_at)
          VALUES (?, ?, 1, ?, ?, ?, ?, ?)`).run(late.key, late.data, late.userId, late.createdAt, late.lastSeenAt, late.expiresAt, late.absoluteExpiresAt);
      }
    });
    try {
      const expired = Array.from({ length: 100 }, () => makeRecord(clock, { expiresAt: clock.now() + 10 }));
      const live = Array.from({ length: 1_900 }, () => makeRecord(clock));
      await Promise.all([...expired, ...live].map((r) => store.set(r, 0)));
      clock.advance(10);
      assert.equal(await store.destroyAll(), live.length + 1, 'the live sessions, the late one among them; not the expired ones');
      assert.ok(left.length >= 4, `several transactions, each reported once it committed (sessions left after each: ${left.join(', ')})`);
      assert.equal(left.at(-1), 0);
      assert.equal(await store.get(late.key), null, 'the session inserted between batches, created before the call, was removed');
      assert.equal(sessionsLeft.get(), 0);
      assert.equal(raw.prepare('SELECT count(*) FROM tether_changes WHERE stamp IS NULL').pluck().get(), expired.length + live.length + 1,
        'a change row for each removal, for other processes');
    } finally {
      off();
      raw.close();
      await store.close();
    }
  });

  it('sqlite store destroyAll when it deletes several batches then other work runs between them, not only after the last, and a session that work creates is kept', async () => {
    const clock = new ManualClock();
    await using store = new SqliteStore({ path: ':memory:', clock, sweepIntervalMs: 0 });
    for (let i = 0; i < 1_600; i++) await store.set(makeRecord(clock), 0);
    let removed = 0;
    store.subscribe((_key, stamp) => { if (stamp === undefined) removed++; });
    // Another request's work, queued as destroyAll starts: it must not wait for all four transactions.
    // It logs someone in: a session created after the call, which stays.
    let removedBeforeIt = -1;
    let late: SessionRecord | undefined;
    setImmediate(() => {
      removedBeforeIt = removed;
      clock.advance(1);
      late = makeRecord(clock, { userId: 'late' });
      void store.set(late, 0);
    });
    assert.equal(await store.destroyAll(), 1_600);
    assert.equal(removedBeforeIt, 500);
    assert.equal(removed, 1_600);
    assert.deepEqual(await store.get(late!.key), late, 'the session created between batches is kept whole');
    assert.deepEqual((await store.listByUser('late')).map((r) => r.key), [late!.key]);
    assert.equal(await store.count(), 1);
  });

  it('sqlite store destroyAll when more sessions than a batch are created between every two of its batches then it still ends, and keeps those', async () => {
    const clock = new ManualClock();
    await using store = new SqliteStore({ path: ':memory:', clock, sweepIntervalMs: 0 });
    const held = Array.from({ length: 1_200 }, () => makeRecord(clock));
    await Promise.all(held.map((r) => store.set(r, 0)));
    // Logins on every turn while it runs, 600 a turn; for at most 30 turns, so that a loop that also
    // takes them ends too.
    const created: SessionRecord[] = [];
    let turns = 0;
    let done = false;
    const work = (): void => {
      if (done || ++turns > 30) return;
      clock.advance(1);
      for (let i = 0; i < 600; i++) {
        const rec = makeRecord(clock);
        created.push(rec);
        void store.set(rec, 0);
      }
      setImmediate(work);
    };
    setImmediate(work);
    assert.equal(await store.destroyAll().finally(() => (done = true)), held.length);
    assert.ok(turns >= 1 && turns <= 5, `ended after ${turns} turn(s) of creation, not when the creation stopped`);
    for (const r of held) assert.equal(await store.get(r.key), null, r.key);
    assert.equal(await store.count(), created.length, 'every session created while it ran is kept');
  });

  it('sqlite store when closed during destroyAll then it rejects with STORE_CLOSED, and the batches it committed stay deleted', async () => {
    const { path } = await temp();
    const clock = new ManualClock();
    const store = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    await Promise.all(Array.from({ length: 1_200 }, () => store.set(makeRecord(clock), 0)));
    let closing: Promise<void> | undefined;
    // Closed once the first batch committed.
    const off = store.subscribe(() => {
      closing ??= store.close();
    });
    await assert.rejects(store.destroyAll(), { code: 'STORE_CLOSED' });
    off();
    await closing;
    await assert.rejects(store.destroyAll(), { code: 'STORE_CLOSED' });
    await using again = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    assert.equal(await again.count(), 700, 'the first batch of 500 was removed, the rest kept whole');
    assert.equal(await again.destroyAll(), 700);
  });
});

describe('SqliteStore crash safety', () => {
  it('sqlite store when the writing process is killed with SIGKILL mid-write then every acknowledged key is on disk', async () => {
    const { path } = await temp();
    const run = await runWriter(path, 100_000, 1_000);
    assert.equal(run.signal, 'SIGKILL', `the writer was killed while writing (exit ${run.code}): ${run.stderr}`);
    assert.ok(run.keys.length >= 1_000, `saw ${run.keys.length} acknowledgements`);
    const raw = new Database(path);
    assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
    raw.close();
    await using store = new SqliteStore({ path, sweepIntervalMs: 0 });
    const missing: string[] = [];
    for (const key of run.keys) if (!(await store.get(key))) missing.push(key);
    assert.deepEqual(missing, [], `${missing.length} of ${run.keys.length} acknowledged writes lost`);
  });
});
