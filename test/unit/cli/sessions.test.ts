/**
 * `tether sessions`: an operator lists, counts and ends a user's sessions in the store an app shares
 * (a real SQLite file here), and an engine on that store sees the result; bad arguments exit 2 with a
 * clear message, and a memory store, which lives inside an app's process, is refused.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import { runCli as run } from '../../helpers/cli.js';
import { createTether } from '../../../src/index.js';
import { SqliteStore } from '../../../src/stores/sqlite/index.js';
import { freePort } from '../../helpers/net.js';
import { generateId, handleOf, hashId } from '../../../src/core/ids.js';
import { jsonCodec } from '../../../src/core/codec.js';
import type { SessionCodec } from '../../../src/core/codec.js';
import { encryptedCodec } from '../../../src/core/encrypted-codec.js';
import { REPO_ROOT } from '../../helpers/node-process.js';
import { RedisStore } from '../../../src/stores/redis/index.js';
import { redisCommand, startRedis } from '../../helpers/redis.js';
import { createDatabase, pgQuery, startPostgres } from '../../helpers/postgres.js';
import type { PostgresServer } from '../../helpers/postgres.js';
import { PostgresStore } from '../../../src/stores/postgres/index.js';
import type { RedisServer } from '../../helpers/redis.js';
import { FaultyStore, ManualClock, SECRET_A, cookiePair, holdAtPointer, sleep, trip, view } from '../support.js';
import { TieredStore } from '../../../src/stores/tiered/index.js';
import type { SocketEndReason } from '../../../src/core/socket.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tether-cli-sessions-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** When ada signed in on Firefox. */
const SIGNED_IN = Date.parse('2026-11-20T08:30:00.000Z');

/** A store file holding two sessions of `ada` (one from Firefox, remembered, signed in at SIGNED_IN, last seen from 203.0.113.0/24), one of `bob` and one anonymous. */
async function seeded(codec: SessionCodec = jsonCodec): Promise<{ url: string; keys: Record<string, string> }> {
  const file = path.join(dir, `s${Math.random().toString(36).slice(2)}.db`);
  const store = new SqliteStore({ path: file });
  const now = Date.now();
  const keys: Record<string, string> = {};
  for (const [name, userId, ua, age] of [['ada1', 'ada', 'Firefox/140', 3], ['ada2', 'ada', undefined, 1], ['bob', 'bob', 'curl/8', 2], ['anon', null, undefined, 0]] as const) {
    const key = hashId(generateId());
    keys[name] = key;
    const at = now - age * 60_000;
    const data = codec.encode({ d: { n: 1 }, ...(ua ? { u: ua } : {}), ...(name === 'ada1' ? { r: 1 as const, a: SIGNED_IN, n: '203.0.113.0/24' } : {}) });
    assert.equal((await store.set({ key, data, version: 1, userId, createdAt: at, lastSeenAt: at, expiresAt: now + 1_800_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
  }
  await store.close();
  return { url: `sqlite:${file}`, keys };
}

describe('tether sessions', () => {
  it('sessions list when the user has sessions then prints each by handle, newest activity first, with its user agent; --json gives the same as data', async () => {
    const { url, keys } = await seeded();
    const r = await run(['sessions', 'list', 'ada', '--store', url]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.ok(lines[0]!.startsWith(handleOf(keys.ada2!)), 'the most recently seen first');
    assert.ok(lines[1]!.startsWith(handleOf(keys.ada1!)) && lines[1]!.endsWith('  signed in 2026-11-20T08:30:00.000Z  remembered  from 203.0.113.0/24  Firefox/140'), lines[1]);
    assert.ok(!lines[0]!.includes('remembered'));
    assert.ok(!r.out.includes(keys.ada1!), 'the store key is never printed, only its handle');
    const json = JSON.parse((await run(['sessions', 'list', 'ada', '--json'], { TETHER_STORE: url })).out) as Array<Record<string, string | null>>;
    assert.deepEqual(json.map((s) => s.handle), [handleOf(keys.ada2!), handleOf(keys.ada1!)]);
    assert.equal(json[1]!.userAgent, 'Firefox/140');
    assert.equal(json[0]!.userAgent, null);
    assert.deepEqual(json.map((s) => s.remembered), [false, true]);
    assert.deepEqual(json.map((s) => s.authenticatedAt), [null, '2026-11-20T08:30:00.000Z']);
    assert.deepEqual(json.map((s) => s.network), [null, '203.0.113.0/24'], 'the network it was last seen from (addressChange)');
    assert.ok(Date.parse(json[0]!.expiresAt!) > Date.now());
    assert.equal((await run(['sessions', 'list', 'nobody', '--store', url])).out, 'no live sessions for nobody\n');
  });

  it('sessions list and count when a session is within expiryGraceMs of its timeout then it is left out, and expires is the deadline listUserSessions gives', async () => {
    const file = path.join(dir, `g${Math.random().toString(36).slice(2)}.db`);
    const url = `sqlite:${file}`;
    const store = new SqliteStore({ path: file });
    const tether = createTether({ secrets: [SECRET_A], store });
    try {
      await trip(tether, undefined, (s) => {
        s.set('n', 1);
        s.login('ada');
      });
      // Timed out 30 s ago for the engine, kept by the store for the 60 s of expiryGraceMs.
      const now = Date.now();
      const data = jsonCodec.encode({ d: { n: 1 } });
      assert.equal((await store.set({ key: hashId(generateId()), data, version: 1, userId: 'ada', createdAt: now - 1_830_000, lastSeenAt: now - 1_830_000, expiresAt: now + 30_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
      const engine = await tether.listUserSessions('ada');
      assert.equal(engine.length, 1);
      const r = await run(['sessions', 'list', 'ada', '--json', '--store', url]);
      assert.equal(r.code, 0, r.err);
      const listed = JSON.parse(r.out) as Array<{ handle: string; expiresAt: string }>;
      assert.deepEqual(listed.map((x) => [x.handle, x.expiresAt]), engine.map((x) => [x.id, new Date(x.expiresAt).toISOString()]));
      // An app with another expiryGraceMs says so.
      const wider = JSON.parse((await run(['sessions', 'list', 'ada', '--json', '--expiry-grace-ms', '0', '--store', url])).out) as unknown[];
      assert.equal(wider.length, 2);
      // count counts as newSessions.maxActive does: not the session that timed out.
      assert.equal((await run(['sessions', 'count', '--store', url])).out, '1\n');
      assert.equal((await run(['sessions', 'count', '--expiry-grace-ms', '0', '--store', url])).out, '2\n');
      const bad = await run(['sessions', 'count', '--expiry-grace-ms', '1.5', '--store', url]);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /--expiry-grace-ms must be a whole number of milliseconds/);
    } finally {
      await tether.close();
    }
  });

  it('sessions list when a User-Agent holds control characters then it prints them as escapes, never as they are', async () => {
    const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.db`);
    const store = new SqliteStore({ path: file });
    const now = Date.now();
    // CSI (U+009B) gets through an HTTP parser as obs-text and acts as ESC [ in a terminal.
    const ua = 'Mozilla\u009b2J\u009b31mX\u007f\u0007';
    const data = jsonCodec.encode({ d: {}, u: ua });
    assert.equal((await store.set({ key: hashId(generateId()), data, version: 1, userId: 'eve', createdAt: now, lastSeenAt: now, expiresAt: now + 1_800_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
    await store.close();
    const r = await run(['sessions', 'list', 'eve', '--store', `sqlite:${file}`]);
    assert.equal(r.code, 0, r.err);
    assert.ok(!/[^\n -~\u00a0-\uffff]/.test(r.out), JSON.stringify(r.out));
    assert.ok(r.out.trimEnd().endsWith('  Mozilla\\u009b2J\\u009b31mX\\u007f\\u0007'), r.out);
    const j = await run(['sessions', 'list', 'eve', '--json', '--store', `sqlite:${file}`]);
    assert.ok(!/[\u007f-\u009f]/.test(j.out), JSON.stringify(j.out));
    assert.equal((JSON.parse(j.out) as Array<{ userAgent: string }>)[0]!.userAgent, ua, 'the JSON still reads as the same text');
  });

  it('sessions list when the app encrypts session data then TETHER_DATA_KEY shows what is inside; without it, the same sessions with nothing of it', async () => {
    const key = 'cli-data-key-0123456789abcdefghijklmnop';
    const { url, keys } = await seeded(encryptedCodec({ keys: key }));
    const withKey = JSON.parse((await run(['sessions', 'list', 'ada', '--json', '--store', url], { TETHER_DATA_KEY: key })).out) as Array<Record<string, string | boolean | null>>;
    assert.deepEqual(withKey.map((s) => [s.handle, s.userAgent, s.remembered]), [[handleOf(keys.ada2!), null, false], [handleOf(keys.ada1!), 'Firefox/140', true]]);
    const without = await run(['sessions', 'list', 'ada', '--json', '--store', url]);
    assert.equal(without.code, 0, without.err);
    assert.deepEqual((JSON.parse(without.out) as Array<Record<string, unknown>>).map((s) => [s.handle, s.userAgent, s.remembered]), [[handleOf(keys.ada2!), null, false], [handleOf(keys.ada1!), null, false]]);
    const weak = await run(['sessions', 'list', 'ada', '--store', url], { TETHER_DATA_KEY: 'short' });
    assert.equal(weak.code, 2);
    assert.match(weak.err, /keys\[0\] has 5 characters/);
  });

  it('sessions end when run then the user\'s sessions are gone for an engine on the same store, and nobody else\'s', async () => {
    const { url } = await seeded();
    assert.equal((await run(['sessions', 'count', '--store', url])).out, '4\n');
    const r = await run(['sessions', 'end', 'ada', '--store', url]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'ended 2 sessions of ada\n');
    assert.equal((await run(['sessions', 'count', '--store', url])).out, '2\n');
    const tether = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: url.slice('sqlite:'.length) }) });
    try {
      assert.deepEqual(await tether.listUserSessions('ada'), []);
      assert.equal((await tether.listUserSessions('bob')).length, 1);
    } finally {
      await tether.close();
    }
    assert.equal((await run(['sessions', 'end', 'ada', '--store', url])).out, 'ended 0 sessions of ada\n');
  });

  it('sessions end when the app renews IDs and one of the user\'s sessions is between its renewal\'s two writes, and another timed out within expiryGraceMs, then it counts each live session once, as destroyUserSessions does', async () => {
    const file = path.join(dir, `e${Math.random().toString(36).slice(2)}.db`);
    const url = `sqlite:${file}`;
    // Started a renewal interval ago: advanced by it, the store's clock and the CLI's agree.
    const clock = new ManualClock(Date.now() - 61_000);
    const store = new FaultyStore(new SqliteStore({ path: file, clock }));
    const tether = createTether({ secrets: [SECRET_A], store, clock, renewal: { intervalMs: 60_000, graceMs: 10_000 } });
    try {
      const first = await trip(tether, undefined, (s) => s.login('ada'));
      const other = await trip(tether, undefined, (s) => s.login('ada'));
      clock.advance(61_000);
      // Timed out 30 s ago for the app, kept by the store for the 60 s of expiryGraceMs.
      const now = Date.now();
      const data = jsonCodec.encode({ d: { n: 1 } });
      assert.equal((await store.set({ key: hashId(generateId()), data, version: 1, userId: 'ada', createdAt: now - 1_830_000, lastSeenAt: now - 1_830_000, expiresAt: now + 30_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
      const { atPointer, release } = holdAtPointer(store);
      const renewing = trip(tether, first.cookie, () => {}, 'GET').catch((err: unknown) => err);
      await atPointer;
      assert.equal((await store.listByUser('ada')).length, 4, 'the session under two IDs, the other device, the one timed out');
      const r = await run(['sessions', 'end', 'ada', '--store', url]);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, 'ended 2 sessions of ada\n');
      release();
      const renewed = await renewing;
      store.beforeSet = undefined;
      const next = renewed instanceof Error ? undefined : cookiePair((renewed as { setCookies: string[] }).setCookies);
      for (const cookie of [first.cookie, other.cookie, ...(next ? [next] : [])]) {
        assert.equal((await trip(tether, cookie, () => {}, 'GET')).session.userId, null, 'signed out');
      }
      assert.deepEqual(await store.listByUser('ada'), []);
      // An app with another expiryGraceMs says so: with none, the session that timed out 30 s ago is live.
      assert.equal((await store.set({ key: hashId(generateId()), data, version: 1, userId: 'ada', createdAt: now - 1_830_000, lastSeenAt: now - 1_830_000, expiresAt: Date.now() + 30_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
      assert.equal((await run(['sessions', 'end', 'ada', '--expiry-grace-ms', '0', '--store', url])).out, 'ended 1 session of ada\n');
    } finally {
      await tether.close();
    }
  });

  it('sessions end when a running app holds a near-cached copy of the session and a WebSocket on it then both hear of it on the change feed, as of another process\'s logout, with no destroyed event there', async () => {
    const file = path.join(dir, `w${Math.random().toString(36).slice(2)}.db`);
    const url = `sqlite:${file}`;
    const tether = createTether({ secrets: [SECRET_A], store: new TieredStore({ shared: new SqliteStore({ path: file }) }) });
    const destroyed: string[] = [];
    tether.events.on('destroyed', (m) => void destroyed.push(m.handle));
    try {
      for (const args of [['ada'], ['ada', 'handle'], ['--all']] as const) {
        const a = await trip(tether, undefined, (s) => {
          s.set('n', 1);
          s.login('ada');
        });
        assert.equal((await trip(tether, a.cookie, (s) => s.get('n'), 'GET')).session.userId, 'ada', 'read, and so cached');
        const socket = await tether.openSocket(view('GET', { host: 'app.test', origin: 'http://app.test', cookie: a.cookie! }), { checkIntervalMs: 0 });
        const heard: SocketEndReason[] = [];
        socket.onEnd((reason) => void heard.push(reason));
        const argv = args[0] === '--all' ? ['--all'] : args.length === 2 ? ['ada', `--handle=${a.session.handle}`] : ['ada'];
        const r = await run(['sessions', 'end', ...argv, '--store', url]);
        assert.equal(r.code, 0, r.err);
        // SqliteStore's feed is polled every 100 ms.
        for (let i = 0; i < 250 && heard.length === 0; i++) await sleep(20);
        assert.deepEqual(heard, ['gone'], `${argv.join(' ')}: the socket ends`);
        assert.equal((await trip(tether, a.cookie, () => {}, 'GET')).session.userId, null, `${argv.join(' ')}: the cached copy is not served`);
        socket.close();
      }
      assert.deepEqual(destroyed, [], 'events are published by the process that ends a session');
    } finally {
      await tether.close();
    }
  });

  it('sessions end --all when run then every session of every user is gone for an engine on the same store, user contexts stay', async () => {
    const { url } = await seeded();
    const file = url.slice('sqlite:'.length);
    const tether = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: file }) });
    try {
      await tether.users.update('ada', () => ({ saved: ['tea'] }));
      assert.equal((await run(['sessions', 'count', '--store', url])).out, '4\n', 'sessions, not the user context');
      const r = await run(['sessions', 'end', '--all', '--store', url]);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, 'ended 4 sessions of every user\n');
      assert.equal((await run(['sessions', 'count', '--store', url])).out, '0\n');
      assert.deepEqual(await tether.listUserSessions('ada'), []);
      assert.deepEqual(await tether.listUserSessions('bob'), []);
      assert.deepEqual(await tether.users.get('ada'), { saved: ['tea'] });
    } finally {
      await tether.close();
    }
    assert.equal((await run(['sessions', 'end', '--all'], { TETHER_STORE: url })).out, 'ended 0 sessions of every user\n');
  });

  it('sessions end --all and end --handle when a session timed out within expiryGraceMs then --all removes it without counting it, as destroyAllSessions does, and --handle answers as for an unknown handle', async () => {
    const { url } = await seeded();
    const file = url.slice('sqlite:'.length);
    // Timed out 30 s ago for the app, kept by the store for the 60 s of expiryGraceMs.
    const stale = async (userId: string | null): Promise<string> => {
      const store = new SqliteStore({ path: file });
      try {
        const now = Date.now();
        const key = hashId(generateId());
        const data = jsonCodec.encode({ d: { n: 1 } });
        assert.equal((await store.set({ key, data, version: 1, userId, createdAt: now - 1_830_000, lastSeenAt: now - 1_830_000, expiresAt: now + 30_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
        return key;
      } finally {
        await store.close();
      }
    };
    const timedOut = handleOf(await stale('ada'));
    const refused = await run(['sessions', 'end', 'ada', `--handle=${timedOut}`, '--store', url]);
    assert.deepEqual({ code: refused.code, out: refused.out, err: refused.err }, { code: 1, out: '', err: `tether sessions: ada has no session ${timedOut}\n` });
    assert.equal((await run(['sessions', 'count', '--expiry-grace-ms', '0', '--store', url])).out, '5\n', 'nothing ended');
    // An app with no grace holds it live: its handle ends it.
    const ended = await run(['sessions', 'end', 'ada', `--handle=${timedOut}`, '--expiry-grace-ms', '0', '--store', url]);
    assert.equal(ended.code, 0, ended.err);
    assert.equal(ended.out, `ended session ${timedOut} of ada\n`);
    assert.equal((await run(['sessions', 'list', 'ada', '--json', '--expiry-grace-ms', '0', '--store', url])).out.includes(timedOut), false);
    await stale('bob');
    await stale(null);
    const all = await run(['sessions', 'end', '--all', '--store', url]);
    assert.equal(all.code, 0, all.err);
    assert.equal(all.out, 'ended 4 sessions of every user\n', 'the seeded four, not the two timed out');
    assert.equal((await run(['sessions', 'count', '--expiry-grace-ms', '0', '--store', url])).out, '0\n', 'those two removed too');
    assert.equal((await run(['sessions', 'list', 'ada', '--store', url])).out, 'no live sessions for ada\n');
    // An app with no grace says so: for it they are live.
    await stale('ada');
    await stale(null);
    assert.equal((await run(['sessions', 'end', '--all', '--expiry-grace-ms', '0', '--store', url])).out, 'ended 2 sessions of every user\n');
  });

  it('sessions end --handle when given one of the user\'s handles then only that session ends; another user\'s handle or an unknown one ends nothing and exits 1', async () => {
    const { url, keys } = await seeded();
    const other = await run(['sessions', 'end', 'ada', `--handle=${handleOf(keys.bob!)}`, '--store', url]);
    assert.deepEqual({ code: other.code, out: other.out, err: other.err }, { code: 1, out: '', err: `tether sessions: ada has no session ${handleOf(keys.bob!)}\n` });
    assert.equal((await run(['sessions', 'end', 'ada', '--handle=-nosuchhandle', '--store', url])).err, 'tether sessions: ada has no session -nosuchhandle\n', 'a handle may begin with -');
    assert.equal((await run(['sessions', 'count', '--store', url])).out, '4\n', 'nothing ended');
    const r = await run(['sessions', 'end', 'ada', `--handle=${handleOf(keys.ada1!)}`, '--store', url]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `ended session ${handleOf(keys.ada1!)} of ada\n`);
    const left = JSON.parse((await run(['sessions', 'list', 'ada', '--json', '--store', url])).out) as Array<{ handle: string }>;
    assert.deepEqual(left.map((x) => x.handle), [handleOf(keys.ada2!)]);
    assert.equal((await run(['sessions', 'list', 'bob', '--store', url])).out.split('\n').filter(Boolean).length, 1, 'bob keeps his');
  });

  it('sessions list and end --handle when the app renews IDs then a session is listed once by a handle that outlives its renewals, and ending it by that handle ends it under its new ID', async () => {
    const file = path.join(dir, `r${Math.random().toString(36).slice(2)}.db`);
    const url = `sqlite:${file}`;
    const clock = new ManualClock();
    const store = new FaultyStore(new SqliteStore({ path: file, clock }));
    const tether = createTether({ secrets: [SECRET_A], store, clock, renewal: { intervalMs: 60_000, graceMs: 10_000 } });
    try {
      const first = await trip(tether, undefined, (s) => {
        s.set('n', 1);
        s.login('ada');
      });
      const listed = JSON.parse((await run(['sessions', 'list', 'ada', '--json', '--store', url])).out) as Array<{ handle: string }>;
      assert.equal(listed.length, 1);
      const handle = listed[0]!.handle;
      // A renewal held between its two writes: the session stored under both IDs for the moment.
      clock.advance(61_000);
      const { atPointer, release } = holdAtPointer(store);
      const renewing = trip(tether, first.cookie, () => {}, 'GET');
      await atPointer;
      const during = JSON.parse((await run(['sessions', 'list', 'ada', '--json', '--store', url])).out) as Array<{ handle: string }>;
      assert.deepEqual(during.map((x) => x.handle), [handle], 'one session, by its handle');
      release();
      const renewed = cookiePair((await renewing).setCookies)!;
      assert.ok(renewed !== first.cookie, 'renewed');
      store.beforeSet = undefined;
      const after = JSON.parse((await run(['sessions', 'list', 'ada', '--json', '--store', url])).out) as Array<{ handle: string }>;
      assert.deepEqual(after.map((x) => x.handle), [handle], 'the same handle under the new ID');
      const r = await run(['sessions', 'end', 'ada', `--handle=${handle}`, '--store', url]);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, `ended session ${handle} of ada\n`);
      for (const cookie of [renewed, first.cookie]) assert.equal((await trip(tether, cookie, () => {}, 'GET')).session.userId, null, 'signed out');
      assert.equal((await run(['sessions', 'list', 'ada', '--store', url])).out, 'no live sessions for ada\n');
    } finally {
      await tether.close();
    }
  });

  it('sessions when arguments are missing or wrong, or the store is process-local, then it exits 2 saying why, and prints nothing', async () => {
    const { url } = await seeded();
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['sessions'], { TETHER_STORE: url }, /sessions needs list, end or count \(got nothing\)/],
      [['sessions', 'drop', 'ada'], { TETHER_STORE: url }, /sessions needs list, end or count \(got "drop"\)/],
      [['sessions', 'end'], { TETHER_STORE: url }, /sessions end needs a user ID \(or --all\)/],
      [['sessions', 'end', 'ada', '--all'], { TETHER_STORE: url }, /give no user ID/],
      [['sessions', 'list', '--all'], { TETHER_STORE: url }, /--all goes with sessions end/],
      [['sessions', 'end', '--all', '--handle=h'], { TETHER_STORE: url }, /--all and --handle do not go together/],
      [['sessions', 'end', 'ada', 'bob'], { TETHER_STORE: url }, /unexpected argument "bob"/],
      [['sessions', 'count', 'ada'], { TETHER_STORE: url }, /unexpected argument "ada"/],
      [['sessions', 'list', 'ada'], {}, /no store: pass --store <url> or set TETHER_STORE/],
      [['sessions', 'list', 'ada', '--store', 'memory'], {}, /a memory store lives inside the app's process/],
      [['sessions', 'list', 'ada', '--store', 'mongo://x'], {}, /OPTIONS_INVALID|not understood/],
      [['sessions', 'list', 'ada', '--bogus'], { TETHER_STORE: url }, /Unknown option '--bogus'/],
      [['sessions', 'list', 'ada', '--handle', 'h'], { TETHER_STORE: url }, /--handle goes with sessions end/],
      [['sessions', 'end', 'ada', '--handle', ''], { TETHER_STORE: url }, /--handle needs a session handle/],
    ];
    for (const [argv, env, re] of cases) {
      const r = await run(argv, env);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.out, '');
      assert.match(r.err, re, argv.join(' '));
    }
  });

  it('sessions and users when the SQLite path names no file (a typo) then they exit 2 naming the path, and create nothing', async () => {
    const missing = path.join(dir, 'no', 'such', 'sesions.db');
    for (const argv of [['sessions', 'end', 'ada'], ['sessions', 'count'], ['sessions', 'list', 'ada'], ['users', 'clear', 'ada'], ['users', 'show', 'ada']]) {
      const r = await run([...argv, '--store', `sqlite:${missing}`], {});
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.out, '');
      assert.match(r.err, /no SQLite store at .*sesions\.db: check the path/, argv.join(' '));
    }
    assert.equal(existsSync(path.join(dir, 'no')), false, 'no folder made');
  });

  it('sessions and users when the SQLite path names another app\'s database or an empty file then they exit 2 naming the path, and add no table to it', async () => {
    // The app's own database, beside its sessions' file: a slip of one name on the command line.
    const other = path.join(dir, 'shop.db');
    const db = new Database(other);
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)');
    db.close();
    const empty = path.join(dir, 'empty.db');
    writeFileSync(empty, '');
    const tables = (file: string): string[] => {
      const reader = new Database(file, { readonly: true });
      try {
        return (reader.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
      } finally {
        reader.close();
      }
    };
    for (const file of [other, empty]) {
      for (const argv of [['sessions', 'end', '--all'], ['sessions', 'count'], ['sessions', 'list', 'ada'], ['users', 'clear', 'ada'], ['users', 'show', 'ada']]) {
        const r = await run([...argv, '--store', `sqlite:${file}`], {});
        assert.equal(r.code, 2, `${argv.join(' ')} ${file}: ${r.out}${r.err}`);
        assert.equal(r.out, '');
        assert.match(r.err, /no SQLite store at .*: the file holds no Tether sessions table; check the path/, argv.join(' '));
      }
    }
    assert.deepEqual(tables(other), ['orders']);
    assert.deepEqual(tables(empty), []);
    assert.equal(statSync(empty).size, 0);
  });

  it('sessions and users when the store is down then they exit 1 with STORE_UNAVAILABLE, not as a usage error', async () => {
    const port = await freePort();
    for (const argv of [['sessions', 'count'], ['sessions', 'list', 'alice'], ['users', 'show', 'alice']]) {
      const r = await run([...argv, '--store', `redis://127.0.0.1:${port}`]);
      assert.equal(r.code, 1, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, /STORE_UNAVAILABLE/);
      assert.doesNotMatch(r.err, /--help/);
      assert.equal(r.out, '');
    }
  });

  it('sessions when run through bin/tether.js then it exits 0 with the answer', async () => {
    const { url } = await seeded();
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'sessions', 'end', 'bob'], { encoding: 'utf8', env: { ...process.env, TETHER_STORE: url } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ended 1 session of bob\n');
  });
});

describe('tether sessions on a Redis the app keys under a prefix of its own', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.dispose();
  });

  it('sessions when the store URL names the app\'s key prefix then counts and ends that app\'s sessions, and no other app\'s', async () => {
    const now = Date.now();
    for (const keyPrefix of ['shop:', 'tether:']) {
      const store = new RedisStore({ url: redis.url, keyPrefix });
      for (const userId of ['ada', 'ada', null]) {
        const key = hashId(generateId());
        const data = jsonCodec.encode({ d: { n: 1 } });
        assert.equal((await store.set({ key, data, version: 1, userId, createdAt: now, lastSeenAt: now, expiresAt: now + 1_800_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
      }
      await store.close();
    }
    const shop = `${redis.url}?keyPrefix=shop%3A`;
    assert.equal((await run(['sessions', 'count', '--store', shop])).out, '3\n');
    const r = await run(['sessions', 'end', 'ada'], { TETHER_STORE: shop });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'ended 2 sessions of ada\n');
    assert.equal((await run(['sessions', 'count', '--store', shop])).out, '1\n');
    assert.equal((await run(['sessions', 'count', '--store', redis.url])).out, '3\n', 'the app under the default prefix keeps its sessions');
    assert.equal(JSON.parse((await run(['sessions', 'list', 'ada', '--json', '--store', redis.url])).out).length, 2);
  });

  it('sessions and users when the key prefix holds no store (a mistyped keyPrefix) then they exit 2 saying so, and write nothing there', async () => {
    const now = Date.now();
    const store = new RedisStore({ url: redis.url, keyPrefix: 'market:' });
    const key = hashId(generateId());
    assert.equal((await store.set({ key, data: jsonCodec.encode({ d: { n: 1 } }), version: 1, userId: 'ada', createdAt: now, lastSeenAt: now, expiresAt: now + 1_800_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
    await store.destroy(key);
    await store.close();
    const raw = new RedisStore({ url: redis.url, keyPrefix: 'markte:' });
    try {
      for (const url of [`${redis.url}?keyPrefix=markte%3A`, `${redis.url}/2?keyPrefix=market%3A`, `${redis.url}?keyPrefix=markte%3A&cache=fenced`]) {
        for (const argv of [['sessions', 'end', '--all'], ['sessions', 'count'], ['sessions', 'list', 'ada'], ['sessions', 'end', 'ada'], ['users', 'clear', 'ada'], ['users', 'show', 'ada']]) {
          const r = await run([...argv, '--store', url], {});
          assert.equal(r.code, 2, `${argv.join(' ')} ${url}: ${r.out}${r.err}`);
          assert.equal(r.out, '');
          assert.match(r.err, /no Redis store under the key prefix "(markte|market):" in that database: no Tether key there; check the URL's keyPrefix=/, argv.join(' '));
        }
      }
      assert.equal(await raw.holdsStore(), false, 'the CLI left no key under the mistyped prefix');
      // The app's prefix holds no session now, only the mark its writes left: an empty store, not a typo.
      const found = await run(['sessions', 'count', '--store', `${redis.url}?keyPrefix=market%3A`], {});
      assert.equal(found.code, 0, found.err);
      assert.equal(found.out, '0\n');
      // A store last written before stores left a mark: its sessions show it is one.
      const older = new RedisStore({ url: redis.url, keyPrefix: 'older:' });
      assert.equal((await older.set({ key: hashId(generateId()), data: jsonCodec.encode({ d: {} }), version: 1, userId: null, createdAt: now, lastSeenAt: now, expiresAt: now + 1_800_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
      await older.close();
      assert.equal(await redisCommand(redis.port, ['DEL', 'older:store']), '1');
      const counted = await run(['sessions', 'count', '--store', `${redis.url}?keyPrefix=older%3A`], {});
      assert.equal(counted.code, 0, counted.err);
      assert.equal(counted.out, '1\n');
    } finally {
      await raw.close();
    }
  });
});

describe('tether sessions on PostgreSQL', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres({ fast: true });
  });
  after(async () => {
    await pg?.dispose();
  });

  it('sessions and users when the URL names a database or table with no store (another app\'s, a mistyped tableName) then they exit 2 saying so, and create no table', async () => {
    const other = await createDatabase(pg.url, 'otherapp');
    await pgQuery(other, 'CREATE TABLE orders (id integer PRIMARY KEY)');
    const app = await createDatabase(pg.url, 'app');
    const store = new PostgresStore({ connectionString: app, schema: 'tenant', tableName: 'sessions', sweepIntervalMs: 0 });
    const now = Date.now();
    assert.equal((await store.set({ key: hashId(generateId()), data: jsonCodec.encode({ d: { n: 1 } }), version: 1, userId: 'ada', createdAt: now, lastSeenAt: now, expiresAt: now + 1_800_000, absoluteExpiresAt: now + 43_200_000 }, 0)).ok, true);
    await store.close();
    const tables = async (url: string): Promise<string[]> =>
      (await pgQuery<{ name: string }>(url, "SELECT schemaname || '.' || tablename AS name FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")).map((t) => t.name);
    const appTables = await tables(app);

    for (const url of [other, `${app}?tableName=sesions&schema=tenant`, app]) {
      for (const argv of [['sessions', 'end', '--all'], ['sessions', 'count'], ['sessions', 'list', 'ada'], ['users', 'clear', 'ada'], ['users', 'show', 'ada']]) {
        const r = await run([...argv, '--store', url], {});
        assert.equal(r.code, 2, `${argv.join(' ')} ${url}: ${r.out}${r.err}`);
        assert.equal(r.out, '');
        assert.match(r.err, /no PostgreSQL store in that database: it has no Tether table .*; check the URL's database/, argv.join(' '));
      }
    }
    assert.deepEqual(await tables(other), ['public.orders']);
    assert.deepEqual(await tables(app), appTables);
    const found = await run(['sessions', 'count', '--store', `${app}?schema=tenant&tableName=sessions`], {});
    assert.equal(found.code, 0, found.err);
    assert.equal(found.out, '1\n');
  });
});
