/**
 * The store conformance suite: every SessionStore, ours or a third party's, registers these
 * `node:test` cases against a real backend. It is the executable form of src/core/store.ts.
 * @module
 */
import { describe, it, before, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { stampOf } from '../core/store.js';
import type { Clock, SessionRecord, SessionStore, SweptSession } from '../core/store.js';
import { MAX_USER_ID_BYTES } from '../core/ids.js';
import { movedData } from '../core/renewal.js';

/** A clock the suite moves by hand; starts at the real time so native TTLs stay in the future. */

/**
 * The margins the removals' counts are checked with (destroyByUser and destroyAll with `marginMs`), and
 * what each counts of three sessions whose deadlines are 30 s (idle), 40 s (absolute) and 120 s ahead.
 */
const REMOVAL_MARGINS: ReadonlyArray<readonly [number | undefined, number, string]> = [
  [undefined, 3, 'no margin'],
  [0, 3, 'margin 0'],
  [29_999, 3, 'every deadline more than the margin ahead'],
  [30_000, 2, 'an idle deadline exactly the margin ahead is not counted'],
  [40_000, 1, 'nor an absolute one'],
  [120_000, 0, 'nor one further off, at the margin'],
];

export class ManualClock implements Clock {
  #now: number;
  constructor(start = Date.now()) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

export interface StoreSuiteFactory {
  /** Shown in test names, e.g. "redis". */
  name: string;
  /** A client on a new, empty backend (a fresh file, database, key prefix…) using `clock`. */
  open(clock: Clock): Promise<SessionStore>;
  /**
   * Another client on the same backend as `store`: another process's worth. In-process stores
   * without a shared backend return a view that shares state. Absent: the multi-client cases use
   * `store` itself.
   */
  connect?(store: SessionStore, clock: Clock): Promise<SessionStore>;
  /** Frees the backend after the store is closed (drop the database, remove the file). */
  dispose?(store: SessionStore): Promise<void>;
  /** Case names to skip, each with the reason, printed in the test output. */
  skip?: Record<string, string>;
  /**
   * Optional members this store does not have (`sweep: true` for a backend with native expiry,
   * `changeFeed: true` for one without a feed, `stamps: true` for a feed that reports keys without
   * stamps). The suite checks the store really lacks the first two and registers their cases only for
   * stores that have them. Default: all present.
   */
  lacks?: { sweep?: boolean; changeFeed?: boolean; stamps?: boolean };
  /** The store has `regenerate` (checked), and its cases are registered. @default false */
  regenerates?: boolean;
  /** The store has `onSwept` (checked), and its cases are registered. @default false */
  reportsSwept?: boolean;
  /** The store has `limiter` (counts shared by every client of the backend; checked), and its cases are registered. @default false */
  limits?: boolean;
  /** The store has `destroyAll` (checked), and its cases are registered. @default false */
  destroysAll?: boolean;
  /**
   * The client `connect` returns sweeps the very store object `store` wraps (tiers over one in-process
   * MemoryStore), whose listeners hear every sweep: the concurrent-sweep case then listens on `store` alone.
   */
  peersShareSweeps?: boolean;
}

let counter = 0;
/** A unique, store-key-shaped key (43 base64url characters, like a SHA-256 digest). */
export function makeKey(label = 'k'): string {
  const base = `${label}${++counter}x${Math.random().toString(36).slice(2)}`.replace(/[^A-Za-z0-9_-]/g, '_');
  return (base + 'A'.repeat(43)).slice(0, 43);
}

export function makeRecord(clock: Clock, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = clock.now();
  return {
    key: makeKey(),
    data: JSON.stringify({ n: 0 }),
    version: 1,
    userId: null,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 60_000,
    absoluteExpiresAt: now + 3_600_000,
    ...overrides,
  };
}

/** Registers the conformance cases under `describe('<name> store conformance')`. */
export function runStoreSuite(factory: StoreSuiteFactory): void {
  describe(`${factory.name} store conformance`, () => {
    const clock = new ManualClock();
    let store: SessionStore;
    const extra: SessionStore[] = [];

    before(async () => {
      store = await factory.open(clock);
    });
    after(async () => {
      for (const s of extra) await s.close();
      await store.close();
      await factory.dispose?.(store);
    });

    const peer = async (): Promise<SessionStore> => {
      if (!factory.connect) return store;
      const s = await factory.connect(store, clock);
      extra.push(s);
      return s;
    };

    const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
      const reason = factory.skip?.[name];
      if (reason !== undefined) it(name, { skip: reason }, fn);
      else it(name, fn);
    };

    test('get of an unknown key returns null', async () => {
      assert.equal(await store.get(makeKey('unknown')), null);
    });

    test('set then get round-trips every field', async () => {
      const rec = makeRecord(clock, { userId: 'alice', data: '{"cart":[1,2,3]}' });
      assert.deepEqual(await store.set(rec, 0), { ok: true });
      assert.deepEqual(await store.get(rec.key), rec);
    });

    test('set with expectedVersion 0 on an existing key is a conflict reporting the current version', async () => {
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      const again = await store.set({ ...rec, data: '"other"' }, 0);
      assert.deepEqual(again, { ok: false, current: 1 });
      assert.equal((await store.get(rec.key))?.data, rec.data);
    });

    test('update with the right version succeeds and a stale version conflicts', async () => {
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      assert.deepEqual(await store.set({ ...rec, version: 2, data: '"v2"' }, 1), { ok: true });
      const stale = await store.set({ ...rec, version: 2, data: '"stale"' }, 1);
      assert.deepEqual(stale, { ok: false, current: 2 });
      const got = await store.get(rec.key);
      assert.equal(got?.data, '"v2"');
      assert.equal(got?.version, 2);
    });

    test('set on a destroyed key with a non-zero expected version never re-creates it', async () => {
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      await store.destroy(rec.key);
      const late = await store.set({ ...rec, version: 2, data: '"resurrected"' }, 1);
      assert.deepEqual(late, { ok: false, current: 0 });
      assert.equal(await store.get(rec.key), null);
    });

    test('destroy is idempotent and removes the record', async () => {
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      await store.destroy(rec.key);
      await store.destroy(rec.key);
      await store.destroy(makeKey('never'));
      assert.equal(await store.get(rec.key), null);
    });

    test('a record past its idle deadline is gone', async () => {
      const rec = makeRecord(clock, { expiresAt: clock.now() + 1_000 });
      await store.set(rec, 0);
      assert.ok(await store.get(rec.key));
      clock.advance(1_000);
      assert.equal(await store.get(rec.key), null);
      assert.deepEqual(await store.set({ ...rec, version: 2 }, 1), { ok: false, current: 0 });
    });

    test('a record past its absolute deadline is gone even when recently touched', async () => {
      const now = clock.now();
      const rec = makeRecord(clock, { expiresAt: now + 10_000, absoluteExpiresAt: now + 2_000 });
      await store.set(rec, 0);
      clock.advance(1_500);
      assert.equal(await store.touch(rec.key, clock.now() + 10_000, clock.now()), true);
      clock.advance(600);
      assert.equal(await store.get(rec.key), null);
    });

    test('a record rewritten without owner, its lastSeenAt at a near deadline (a renewal\'s pointer), is live until then and off its owner\'s index', async () => {
      const user = makeKey('u');
      const owned = makeRecord(clock, { userId: user });
      assert.deepEqual(await store.set(owned, 0), { ok: true });
      const until = clock.now() + 5_000;
      const pointer = { ...owned, data: '"moved"', version: 2, userId: null, lastSeenAt: until, expiresAt: until, absoluteExpiresAt: until };
      assert.deepEqual(await store.set(pointer, 1), { ok: true });
      assert.deepEqual(await store.get(owned.key), pointer);
      assert.deepEqual(await store.listByUser(user), []);
      clock.advance(4_999);
      assert.deepEqual(await store.get(owned.key), pointer);
      clock.advance(1);
      assert.equal(await store.get(owned.key), null);
    });

    test('a compare-and-set to a record already past its deadline ends it: nothing live is left, and the old version conflicts', async () => {
      // A backend of its own, for count(): records other cases left may expire in real time (Redis TTLs) between two counts.
      const own = await factory.open(clock);
      try {
        const rec = makeRecord(clock, { userId: 'ending-user' });
        await own.set(rec, 0);
        const now = clock.now();
        const ended = { ...rec, version: 2, data: '"ended"', expiresAt: now - 1, absoluteExpiresAt: now - 1 };
        assert.deepEqual(await own.set(ended, 1), { ok: true });
        assert.equal(await own.get(rec.key), null);
        assert.deepEqual(await own.listByUser('ending-user'), []);
        if (own.count) assert.equal(await own.count(), 0, 'count() leaves it out');
        assert.deepEqual(await own.set({ ...rec, version: 2, data: '"late"' }, 1), { ok: false, current: 0 });
        assert.equal(await own.touch(rec.key, now + 60_000, now), false, 'a touch does not bring it back');
        assert.equal(await own.get(rec.key), null);
      } finally {
        await own.close();
        await factory.dispose?.(own);
      }
    });

    test('count() and destroyAll() leave a renewal\'s pointer out: its session is counted once, under its new key', async () => {
      // A backend of its own, as above: the counts must be exact.
      const own = await factory.open(clock);
      try {
        const old = makeRecord(clock, { key: makeKey('renewed-old'), userId: 'renewing-user' });
        await own.set(old, 0);
        const renewed = { ...old, key: makeKey('renewed-new') };
        await own.set(renewed, 0);
        const until = clock.now() + 30_000;
        const pointer = { ...old, data: movedData('old-id', 'new-id'), version: 2, userId: null, lastSeenAt: until, expiresAt: until };
        assert.deepEqual(await own.set(pointer, 1), { ok: true });
        // An anonymous session whose deadline happens to equal its lastSeenAt is still a session.
        const edge = makeRecord(clock, { key: makeKey('edge') });
        await own.set({ ...edge, lastSeenAt: edge.expiresAt }, 0);
        if (own.count) assert.equal(await own.count(), 2, 'the pointer is not counted');
        if (own.destroyAll) {
          assert.equal(await own.destroyAll(), 2, 'the pointer is removed but not counted');
          assert.equal(await own.get(pointer.key), null);
        }
      } finally {
        await own.close();
        await factory.dispose?.(own);
      }
    });

    test('an expired key can be created again from version 0', async () => {
      const rec = makeRecord(clock, { expiresAt: clock.now() + 500 });
      await store.set(rec, 0);
      clock.advance(600);
      const fresh = makeRecord(clock, { key: rec.key });
      assert.deepEqual(await store.set(fresh, 0), { ok: true });
      assert.equal((await store.get(rec.key))?.version, 1);
    });

    test('touch extends the idle deadline without changing data or version', async () => {
      const rec = makeRecord(clock, { expiresAt: clock.now() + 1_000 });
      await store.set(rec, 0);
      clock.advance(800);
      assert.equal(await store.touch(rec.key, clock.now() + 1_000, clock.now()), true);
      clock.advance(800);
      const got = await store.get(rec.key);
      assert.ok(got);
      assert.equal(got.data, rec.data);
      assert.equal(got.version, 1);
      assert.equal(got.lastSeenAt, clock.now() - 800);
      assert.equal(got.expiresAt, clock.now() + 200);
    });

    test('touch of a missing or expired key does nothing and never creates', async () => {
      const key = makeKey('touch');
      assert.equal(await store.touch(key, clock.now() + 10_000, clock.now()), false);
      assert.equal(await store.get(key), null);
      const rec = makeRecord(clock, { expiresAt: clock.now() + 100 });
      await store.set(rec, 0);
      clock.advance(200);
      assert.equal(await store.touch(rec.key, clock.now() + 10_000, clock.now()), false);
      assert.equal(await store.get(rec.key), null);
    });

    test('touch with a version touches only a record still at that version', async () => {
      const rec = makeRecord(clock, { expiresAt: clock.now() + 1_000 });
      await store.set(rec, 0);
      // A newer write set a long deadline (a session remembered meanwhile); a touch by a request that
      // read version 1 must not put its shorter one over it.
      const longer = { ...rec, version: 2, data: '"remembered"', expiresAt: clock.now() + 50_000 };
      assert.deepEqual(await store.set(longer, 1), { ok: true });
      assert.equal(await store.touch(rec.key, clock.now() + 2_000, clock.now(), 1), false);
      let got = await store.get(rec.key);
      assert.equal(got?.expiresAt, longer.expiresAt);
      assert.equal(got?.version, 2);
      clock.advance(100);
      assert.equal(await store.touch(rec.key, clock.now() + 60_000, clock.now(), 2), true);
      got = await store.get(rec.key);
      assert.equal(got?.expiresAt, clock.now() + 60_000);
      assert.equal(got?.lastSeenAt, clock.now());
      assert.equal(got?.version, 2, 'a touch leaves the version');
      assert.equal(await store.touch(makeKey('touch-v'), clock.now() + 1_000, clock.now(), 1), false, 'nor creates');
    });

    test('count, where the store has it, counts live sessions and not user contexts', async () => {
      if (!store.count) return;
      // A backend of its own: records other cases left may expire in real time (Redis TTLs) between two counts.
      const own = await factory.open(clock);
      try {
        const sessions = [makeRecord(clock, { userId: makeKey('u') }), makeRecord(clock)];
        const context = makeRecord(clock, { key: 'user:' + makeKey() });
        for (const r of [...sessions, context]) assert.deepEqual(await own.set(r, 0), { ok: true });
        assert.equal(await own.count!(), 2);
        await own.destroy(sessions[0]!.key);
        assert.equal(await own.count!(), 1);
        await own.destroy(sessions[1]!.key);
        assert.equal(await own.count!(), 0);
        assert.equal((await own.get(context.key))?.data, context.data);
      } finally {
        await own.close();
        await factory.dispose?.(own);
      }
    });

    test('count({ marginMs }), where the store has it, leaves out sessions whose idle or absolute deadline is that close (the engine\'s expiryGraceMs)', async () => {
      if (!store.count) return;
      // A backend of its own, as above: the counts must be exact.
      const own = await factory.open(clock);
      try {
        const now = clock.now();
        // Deadlines tens of seconds ahead: a backend that expires keys in real time (Redis) keeps them all through the case.
        const idle = makeRecord(clock, { userId: makeKey('u'), expiresAt: now + 30_000 });
        const absolute = makeRecord(clock, { expiresAt: now + 120_000, absoluteExpiresAt: now + 40_000 });
        const far = makeRecord(clock, { expiresAt: now + 120_000 });
        const context = makeRecord(clock, { key: 'user:' + makeKey(), expiresAt: now + 600_000 });
        const until = now + 200_000;
        const pointer = makeRecord(clock, { data: movedData('old-id', 'new-id'), lastSeenAt: until, expiresAt: until, absoluteExpiresAt: until });
        for (const r of [idle, absolute, far, context, pointer]) assert.deepEqual(await own.set(r, 0), { ok: true });
        assert.equal(await own.count!(), 3, 'no margin');
        assert.equal(await own.count!({}), 3);
        assert.equal(await own.count!({ marginMs: 0 }), 3);
        assert.equal(await own.count!({ marginMs: 29_999 }), 3, 'every deadline more than the margin ahead');
        assert.equal(await own.count!({ marginMs: 30_000 }), 2, 'an idle deadline exactly the margin ahead is not counted');
        assert.equal(await own.count!({ marginMs: 40_000 }), 1, 'nor an absolute one');
        assert.equal(await own.count!({ marginMs: 100_000 }), 1, 'a pointer and a user context are never counted, however far their deadlines');
        assert.equal(await own.count!({ marginMs: 120_000 }), 0);
        clock.advance(20_000);
        assert.equal(await own.count!({ marginMs: 10_000 }), 2, 'the margin runs from the store clock\'s now');
        assert.equal(await own.count!({ marginMs: 9_999 }), 3);
        for (const marginMs of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await assert.rejects(own.count!({ marginMs }), TypeError, `marginMs ${marginMs}`);
        }
      } finally {
        await own.close();
        await factory.dispose?.(own);
      }
    });

    test('stored copies are isolated from the caller', async () => {
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      rec.data = '"mutated after set"';
      const got = await store.get(rec.key);
      assert.ok(got);
      assert.notEqual(got.data, '"mutated after set"');
      got.data = '"mutated after get"';
      got.version = 99;
      const again = await store.get(rec.key);
      assert.notEqual(again?.data, '"mutated after get"');
      assert.equal(again?.version, 1);
    });

    test('listByUser lists only that user’s live sessions', async () => {
      const user = `u-${makeKey('user')}`;
      const a = makeRecord(clock, { userId: user });
      // Seconds, not milliseconds, before `b` expires: a store whose backend expires keys in real time
      // (Redis) must still hold it when first listed on a loaded machine.
      const b = makeRecord(clock, { userId: user, expiresAt: clock.now() + 30_000 });
      const c = makeRecord(clock, { userId: `${user}-other` });
      const d = makeRecord(clock);
      for (const r of [a, b, c, d]) await store.set(r, 0);
      assert.deepEqual((await store.listByUser(user)).map((r) => r.key).sort(), [a.key, b.key].sort());
      clock.advance(30_001);
      assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [a.key]);
      assert.deepEqual(await store.listByUser(`nobody-${makeKey()}`), []);
    });

    test('the user index follows a change of owner and a destroy', async () => {
      const u1 = `u1-${makeKey()}`;
      const u2 = `u2-${makeKey()}`;
      const rec = makeRecord(clock, { userId: u1 });
      await store.set(rec, 0);
      await store.set({ ...rec, version: 2, userId: u2 }, 1);
      assert.deepEqual(await store.listByUser(u1), []);
      assert.deepEqual((await store.listByUser(u2)).map((r) => r.key), [rec.key]);
      await store.set({ ...rec, version: 3, userId: null }, 2);
      assert.deepEqual(await store.listByUser(u2), []);
      await store.set({ ...rec, version: 4, userId: u1 }, 3);
      await store.destroy(rec.key);
      assert.deepEqual(await store.listByUser(u1), []);
    });

    test('destroyByUser removes all but the excepted sessions and counts them', async () => {
      const user = `u-${makeKey('dbu')}`;
      const keep = makeRecord(clock, { userId: user });
      const gone1 = makeRecord(clock, { userId: user });
      const gone2 = makeRecord(clock, { userId: user });
      const other = makeRecord(clock, { userId: `${user}-x` });
      for (const r of [keep, gone1, gone2, other]) await store.set(r, 0);
      assert.equal(await store.destroyByUser(user, { except: [keep.key] }), 2);
      assert.equal(await store.get(gone1.key), null);
      assert.equal(await store.get(gone2.key), null);
      assert.ok(await store.get(keep.key));
      assert.ok(await store.get(other.key));
      assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [keep.key]);
      assert.equal(await store.destroyByUser(user), 1);
      assert.equal(await store.get(keep.key), null);
      assert.equal(await store.destroyByUser(user), 0);
      // A destroyed session's late write cannot bring it back into the index.
      assert.deepEqual(await store.set({ ...gone1, version: 2 }, 1), { ok: false, current: 0 });
      assert.deepEqual(await store.listByUser(user), []);
    });

    test('destroyByUser({ marginMs }) removes every session of the user but those excepted, and counts only those whose idle or absolute deadline is further off than that (the engine\'s expiryGraceMs)', async () => {
      const now = clock.now();
      // The user's sessions, as in count's case: deadlines tens of seconds ahead, so that a backend that
      // expires keys in real time (Redis) keeps them all through the case; one of them excepted.
      const sessionsOf = async (deadlines: { idle: number; absolute: number; far: number }): Promise<{ user: string; keep: SessionRecord; gone: SessionRecord[] }> => {
        const user = `u-${makeKey('margin')}`;
        const keep = makeRecord(clock, { userId: user, expiresAt: deadlines.far });
        const gone = [
          makeRecord(clock, { userId: user, expiresAt: deadlines.idle }),
          makeRecord(clock, { userId: user, expiresAt: deadlines.far, absoluteExpiresAt: deadlines.absolute }),
          makeRecord(clock, { userId: user, expiresAt: deadlines.far }),
        ];
        for (const r of [keep, ...gone]) assert.deepEqual(await store.set(r, 0), { ok: true });
        return { user, keep, gone };
      };
      const ahead = { idle: now + 30_000, absolute: now + 40_000, far: now + 120_000 };
      const ends = async (marginMs: number | undefined, expected: number, why: string): Promise<void> => {
        const { user, keep, gone } = await sessionsOf(ahead);
        const options = marginMs === undefined ? { except: [keep.key] } : { except: [keep.key], marginMs };
        assert.equal(await store.destroyByUser(user, options), expected, why);
        for (const r of gone) assert.equal(await store.get(r.key), null, `${why}: every session but the excepted one is removed, counted or not`);
        assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [keep.key], why);
      };
      for (const [marginMs, expected, why] of REMOVAL_MARGINS) await ends(marginMs, expected, why);
      const { user, keep, gone } = await sessionsOf(ahead);
      for (const marginMs of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(store.destroyByUser(user, { marginMs }), TypeError, `marginMs ${marginMs}`);
      }
      assert.equal((await store.listByUser(user)).length, 4, 'a margin refused removes nothing');
      clock.advance(20_000);
      assert.equal(await store.destroyByUser(user, { except: [keep.key], marginMs: 10_000 }), 2, 'the margin runs from the store clock\'s now');
      for (const r of gone) assert.equal(await store.get(r.key), null);
      const later = await sessionsOf(ahead);
      assert.equal(await store.destroyByUser(later.user, { except: [later.keep.key], marginMs: 9_999 }), 3);
      assert.deepEqual((await store.listByUser(later.user)).map((r) => r.key), [later.keep.key]);
    });

    test('a 60 KB value round-trips intact', async () => {
      const big = JSON.stringify({ blob: 'x'.repeat(60 * 1024), tail: 'end' });
      const rec = makeRecord(clock, { data: big });
      await store.set(rec, 0);
      assert.equal((await store.get(rec.key))?.data, big);
    });

    test('unicode values and user ids round-trip', async () => {
      const data = JSON.stringify({ name: 'Zoë Ünïcödé 名前 🛒', rtl: 'שלום', nul: 'a\u0000b', quote: `"'\\` });
      const user = `ユーザー-😀-${makeKey()}`;
      const rec = makeRecord(clock, { data, userId: user });
      await store.set(rec, 0);
      assert.equal((await store.get(rec.key))?.data, data);
      assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [rec.key]);
    });

    test('the longest user ID the engine accepts (1,024 bytes of UTF-8, in a 3-byte script) is stored, listed and its sessions destroyed', async () => {
      const suffix = makeKey();
      const user = suffix + 'ユ'.repeat(Math.floor((MAX_USER_ID_BYTES - suffix.length) / 3));
      assert.ok(Buffer.byteLength(user) > MAX_USER_ID_BYTES - 3 && Buffer.byteLength(user) <= MAX_USER_ID_BYTES);
      const rec = makeRecord(clock, { userId: user });
      assert.deepEqual(await store.set(rec, 0), { ok: true });
      assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [rec.key]);
      assert.equal(await store.destroyByUser(user), 1);
      assert.equal(await store.get(rec.key), null);
    });

    test('awkward keys are plain keys (user-context style and odd characters)', async () => {
      for (const key of ['user:' + makeKey(), makeKey() + ':*?[]{}', 'ключ-' + makeKey()]) {
        const rec = makeRecord(clock, { key });
        await store.set(rec, 0);
        assert.equal((await store.get(key))?.key, key);
        await store.destroy(key);
        assert.equal(await store.get(key), null);
      }
    });

    test('100 parallel compare-and-set updates from several clients lose no success', async () => {
      const clients = [store, await peer(), await peer(), await peer()];
      const rec = makeRecord(clock, { data: JSON.stringify({ n: 0 }) });
      await store.set(rec, 0);
      let successes = 0;
      const worker = async (client: SessionStore, budget: number): Promise<void> => {
        let done = 0;
        for (let attempts = 0; done < budget && attempts < 10_000; attempts++) {
          const cur = await client.get(rec.key);
          assert.ok(cur);
          const n = (JSON.parse(cur.data) as { n: number }).n;
          const res = await client.set({ ...cur, version: cur.version + 1, data: JSON.stringify({ n: n + 1 }) }, cur.version);
          if (res.ok) {
            successes++;
            done++;
          }
        }
      };
      await Promise.all(Array.from({ length: 100 }, (_, i) => worker(clients[i % clients.length]!, 1)));
      const final = await store.get(rec.key);
      assert.ok(final);
      assert.equal(successes, 100);
      assert.equal((JSON.parse(final.data) as { n: number }).n, 100);
      assert.equal(final.version, 101);
    });

    test('a write through one client is read by another', async () => {
      const other = await peer();
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      assert.equal((await other.get(rec.key))?.data, rec.data);
      await other.set({ ...rec, version: 2, data: '"from other"' }, 1);
      assert.equal((await store.get(rec.key))?.data, '"from other"');
    });

    test('after close() every call rejects with STORE_CLOSED and close() is idempotent', async () => {
      const own = factory.connect ? await factory.connect(store, clock) : await factory.open(clock);
      await own.close();
      await own.close();
      const rec = makeRecord(clock);
      const calls: Array<() => Promise<unknown>> = [
        () => own.get(rec.key),
        () => own.set(rec, 0),
        () => own.touch(rec.key, 1, 1),
        () => own.destroy(rec.key),
        () => own.listByUser('x'),
        () => own.destroyByUser('x'),
      ];
      for (const call of calls) {
        await assert.rejects(call, (err: { code?: string }) => err.code === 'STORE_CLOSED');
      }
      if (!factory.connect) await factory.dispose?.(own);
    });

    test('when its await using block ends then the store is closed as by close()', async (t) => {
      const own = factory.connect ? await factory.connect(store, clock) : await factory.open(clock);
      const disposable = own as SessionStore & Partial<AsyncDisposable>;
      if (typeof disposable[Symbol.asyncDispose] !== 'function') {
        await own.close();
        if (!factory.connect) await factory.dispose?.(own);
        t.skip('the store has no [Symbol.asyncDispose]() (Tether\'s own stores all do)');
        return;
      }
      const rec = makeRecord(clock);
      {
        await using held = disposable as SessionStore & AsyncDisposable;
        assert.deepEqual(await held.set(rec, 0), { ok: true });
      }
      await assert.rejects(own.get(rec.key), (err: { code?: string }) => err.code === 'STORE_CLOSED');
      // A second client of the same backend (`connect`) still reads what the closed one wrote.
      if (factory.connect) assert.equal((await store.get(rec.key))?.data, rec.data, 'what it wrote stays in the backend');
      else await factory.dispose?.(own);
    });

    test('optional members are present exactly as declared', async () => {
      assert.equal(typeof store.sweep === 'function', !factory.lacks?.sweep, 'sweep()');
      assert.equal(typeof store.subscribe === 'function', !factory.lacks?.changeFeed, 'subscribe()');
      assert.equal(typeof store.regenerate === 'function', factory.regenerates === true, 'regenerate()');
      assert.equal(typeof store.onSwept === 'function', factory.reportsSwept === true, 'onSwept()');
      assert.equal(typeof store.limiter === 'function', factory.limits === true, 'limiter()');
      assert.equal(typeof store.destroyAll === 'function', factory.destroysAll === true, 'destroyAll()');
    });

    if (factory.destroysAll) {
      test('destroyAll removes every session and its index entries, keeps user contexts, and counts what it removed', async () => {
        const other = await peer();
        // Whatever earlier cases left goes first, so the count below is this case's alone.
        await store.destroyAll!();
        const user = `u-${makeKey('all')}`;
        const owned = [makeRecord(clock, { userId: user }), makeRecord(clock, { userId: user })];
        const anonymous = makeRecord(clock);
        const context = makeRecord(clock, { key: 'user:' + makeKey() });
        const expired = makeRecord(clock, { expiresAt: clock.now() + 10 });
        // More than one batch of every backend's.
        const many = Array.from({ length: 2_500 }, (_, i) => makeRecord(clock, { userId: i % 2 === 0 ? null : `u${i % 5}-${user}` }));
        for (const r of [...owned, anonymous, context, expired]) assert.deepEqual(await store.set(r, 0), { ok: true });
        for (let i = 0; i < many.length; i += 250) {
          for (const res of await Promise.all(many.slice(i, i + 250).map((r) => other.set(r, 0)))) assert.deepEqual(res, { ok: true });
        }
        clock.advance(20);
        assert.equal(await other.destroyAll!(), many.length + 3, 'the live sessions, not the user context nor the expired one');
        for (const r of [...owned, anonymous, ...many.slice(0, 50), ...many.slice(-50)]) assert.equal(await store.get(r.key), null, r.key);
        assert.deepEqual(await store.listByUser(user), []);
        assert.deepEqual(await store.listByUser(`u1-${user}`), []);
        assert.equal((await store.get(context.key))?.data, context.data, 'the user context stays');
        assert.deepEqual(await store.set({ ...anonymous, version: 2 }, 1), { ok: false, current: 0 }, 'a removed session is never written again');
        assert.equal(await store.destroyAll!(), 0);
        const later = makeRecord(clock, { userId: user });
        assert.deepEqual(await store.set(later, 0), { ok: true });
        assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [later.key], 'new sessions are stored and indexed as before');
        await store.destroy(later.key);
        await store.destroy(context.key);
      });

      test('destroyAll({ marginMs }) removes every session and counts only those whose idle or absolute deadline is further off than that (the engine\'s expiryGraceMs), never a pointer', async () => {
        // A backend of its own, as for count's margin: the counts must be exact.
        const own = await factory.open(clock);
        try {
          const now = clock.now();
          // As in count's case: deadlines tens of seconds ahead (Redis expires keys in real time).
          const context = makeRecord(clock, { key: 'user:' + makeKey(), expiresAt: now + 600_000 });
          assert.deepEqual(await own.set(context, 0), { ok: true });
          const stored = async (): Promise<SessionRecord[]> => {
            const until = now + 200_000;
            const records = [
              makeRecord(clock, { userId: makeKey('u'), expiresAt: now + 30_000 }),
              makeRecord(clock, { expiresAt: now + 120_000, absoluteExpiresAt: now + 40_000 }),
              makeRecord(clock, { expiresAt: now + 120_000 }),
              makeRecord(clock, { data: movedData('old-id', 'new-id'), lastSeenAt: until, expiresAt: until, absoluteExpiresAt: until }),
            ];
            for (const r of records) assert.deepEqual(await own.set(r, 0), { ok: true });
            return records;
          };
          const ends = async (marginMs: number | undefined, expected: number, why: string): Promise<void> => {
            const records = await stored();
            assert.equal(await own.destroyAll!(marginMs === undefined ? undefined : { marginMs }), expected, why);
            for (const r of records) assert.equal(await own.get(r.key), null, `${why}: every session is removed, counted or not`);
            if (own.count) assert.equal(await own.count(), 0, why);
          };
          // With a pointer among them, never counted: at 100 s, where the others' counts are those of 40 s.
          for (const [marginMs, expected, why] of [...REMOVAL_MARGINS, [100_000, 1, 'a pointer is never counted, however far its deadline'] as const]) {
            await ends(marginMs, expected, why);
          }
          const records = await stored();
          for (const marginMs of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
            await assert.rejects(own.destroyAll!({ marginMs }), TypeError, `marginMs ${marginMs}`);
          }
          for (const r of records) assert.deepEqual((await own.get(r.key))?.key, r.key, 'a margin refused removes nothing');
          clock.advance(20_000);
          assert.equal(await own.destroyAll!({ marginMs: 10_000 }), 2, 'the margin runs from the store clock\'s now');
          await stored();
          assert.equal(await own.destroyAll!({ marginMs: 9_999 }), 3);
          assert.equal((await own.get(context.key))?.data, context.data, 'the user context stays');
        } finally {
          await own.close();
          await factory.dispose?.(own);
        }
      });

      test('destroyAll walked twice while another client renews sessions (a copy under a new key, then the old record made a pointer) leaves none of them live', async () => {
        const other = await peer();
        await store.destroyAll!();
        const sessions = Array.from({ length: 1_200 }, (_, i) => makeRecord(clock, { userId: i % 3 === 0 ? null : `u${i % 7}-${makeKey('renew')}` }));
        for (let i = 0; i < sessions.length; i += 200) {
          for (const res of await Promise.all(sessions.slice(i, i + 200).map((r) => store.set(r, 0)))) assert.deepEqual(res, { ok: true });
        }
        let walking = true;
        const walk = (async () => {
          try {
            return await store.destroyAll!() + await store.destroyAll!();
          } finally {
            walking = false;
          }
        })();
        // As the engine renews an ID: the session stored under a new key (keeping its age), then the old
        // record made an ownerless pointer by compare-and-set; the copy is removed when that fails.
        const renewed: string[] = [];
        const renew = async (old: SessionRecord): Promise<void> => {
          const fresh: SessionRecord = { ...old, key: makeKey('renewed'), version: 1, lastSeenAt: clock.now() };
          if (!(await other.set(fresh, 0)).ok) return;
          const until = clock.now() + 30_000;
          const pointer: SessionRecord = { ...old, data: '{"moved":1}', version: 2, userId: null, lastSeenAt: until, expiresAt: until,
            absoluteExpiresAt: Math.min(old.absoluteExpiresAt, until) };
          if ((await other.set(pointer, 1)).ok) renewed.push(fresh.key);
          else await other.destroy(fresh.key);
        };
        // Waves of renewals at once, so that some land before the walk reaches their session, some after.
        for (let i = 0; i < sessions.length && walking; i += 40) await Promise.all(sessions.slice(i, i + 20).map(renew));
        await walk;
        for (const key of renewed) assert.equal(await store.get(key), null, `renewed to ${key} while the store was walked`);
        for (const r of sessions) assert.equal(await store.get(r.key), null, r.key);
      });

      if (!factory.lacks?.changeFeed) test('destroyAll reports each removal on the change feed, without a stamp', async () => {
        const other = await peer();
        // Whatever earlier cases left goes first, so the count below is this case's alone.
        await store.destroyAll!();
        const records = Array.from({ length: 30 }, () => makeRecord(clock, { userId: makeKey('u') }));
        for (const r of records) await store.set(r, 0);
        const keys = new Set(records.map((r) => r.key));
        const heard = new Map<string, string | undefined>();
        let done: () => void = () => {};
        const all = new Promise<void>((resolve) => (done = resolve));
        const off = store.subscribe!((key, stamp) => {
          if (!keys.has(key)) return;
          heard.set(key, stamp);
          if (heard.size === keys.size) done();
        });
        try {
          // Give subscription-based feeds (pub/sub, LISTEN) a moment to attach before writing.
          await new Promise((r) => setTimeout(r, 50));
          assert.equal(await other.destroyAll!(), records.length);
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000)))]);
          clearTimeout(timer);
          assert.equal(heard.size, keys.size, 'every removed session reported');
          for (const stamp of heard.values()) assert.equal(stamp, undefined);
        } finally {
          off();
        }
      });
    }

    if (factory.limits) {
      /** Moves the suite's clock to the start of the next fixed window of `windowMs`. */
      const toWindowStart = (windowMs: number): void => clock.advance(windowMs - (clock.now() % windowMs));
      const takes = async (limiter: { take(key: string): boolean | Promise<boolean> }, key: string, n: number): Promise<boolean[]> => {
        const out: boolean[] = [];
        for (let i = 0; i < n; i++) out.push(await limiter.take(key));
        return out;
      };

      test('limiter allows limit events per key in a window, then refuses; other keys and names count apart; peek counts nothing', async () => {
        const windowMs = 60_000;
        toWindowStart(windowMs);
        const limiter = store.limiter!('suite.a', 3, windowMs);
        const key = `10.0.0.${++counter}`;
        assert.equal(await limiter.peek(key), true);
        assert.equal(await limiter.peek(key), true, 'a peek counted');
        assert.deepEqual(await takes(limiter, key, 5), [true, true, true, false, false]);
        assert.equal(await limiter.peek(key), false);
        assert.deepEqual(await takes(limiter, `${key}x`, 1), [true], 'another key shares the count');
        assert.deepEqual(await takes(store.limiter!('suite.b', 3, windowMs), key, 1), [true], 'another name shares the count');
      });

      test('limiter counts once for every client of the backend', async () => {
        const windowMs = 60_000;
        toWindowStart(windowMs);
        const other = await peer();
        const mine = store.limiter!('suite.shared', 4, windowMs);
        const theirs = other.limiter!('suite.shared', 4, windowMs);
        const key = `10.0.1.${++counter}`;
        const got = [await mine.take(key), await theirs.take(key), await mine.take(key), await theirs.take(key), await mine.take(key), await theirs.take(key)];
        assert.deepEqual(got, [true, true, true, true, false, false]);
        assert.equal(await theirs.peek(key), false);
        // Taken at once from both: exactly the limit passes.
        const burst = `10.0.2.${counter}`;
        const all = await Promise.all(Array.from({ length: 12 }, async (_, i) => (i % 2 ? mine : theirs).take(burst)));
        assert.equal(all.filter(Boolean).length, 4);
      });

      test('limiter window slides: the last window weighs by how much of it still overlaps, and is forgotten after', async () => {
        const windowMs = 10_000;
        toWindowStart(windowMs);
        const limiter = store.limiter!('suite.slide', 3, windowMs);
        const key = `10.0.3.${++counter}`;
        assert.deepEqual(await takes(limiter, key, 4), [true, true, true, false]);
        // Half way through the next window the last one's 3 count as 1.5: one more fits (2.5), not two (3.5).
        clock.advance(windowMs + windowMs / 2);
        assert.deepEqual(await takes(limiter, key, 3), [true, true, false]);
        // Two windows on, nothing counted before weighs.
        clock.advance(2 * windowMs);
        assert.deepEqual(await takes(limiter, key, 4), [true, true, true, false]);
      });

      test('limiter with a bad name, limit or window throws a TypeError', async () => {
        for (const [name, limit, windowMs] of [['', 1, 1], ['has space', 1, 1], ['{tag}', 1, 1], ['ok', 0, 1000], ['ok', 1.5, 1000], ['ok', 1, 0], ['ok', 1, Number.NaN]] as const) {
          assert.throws(() => store.limiter!(name, limit, windowMs), TypeError, `${name} ${limit} ${windowMs}`);
        }
      });
    }

    if (factory.regenerates) {
      /** A live record of `userId` and what a regeneration writes over it: its ended form and a new record. */
      const regeneration = async (userId: string | null): Promise<{ old: SessionRecord; ended: SessionRecord; created: SessionRecord }> => {
        const old = makeRecord(clock, { userId });
        assert.deepEqual(await store.set(old, 0), { ok: true });
        const now = clock.now();
        const ended = { ...old, data: '"ended"', version: 2, lastSeenAt: now, expiresAt: now - 1, absoluteExpiresAt: now - 1 };
        return { old, ended, created: makeRecord(clock, { userId, data: JSON.stringify({ n: 1 }) }) };
      };

      test('regenerate ends the old record and writes the new one, index included', async () => {
        const user = makeKey('u');
        const { old, ended, created } = await regeneration(user);
        assert.deepEqual(await store.regenerate!(ended, 1, created), { ok: true });
        assert.equal(await store.get(old.key), null);
        assert.deepEqual(await store.get(created.key), created);
        assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [created.key]);
        assert.deepEqual(await store.set({ ...old, version: 2 }, 1), { ok: false, current: 0 }, 'the old key stays ended');
        const anonymous = await regeneration(null);
        assert.deepEqual(await store.regenerate!(anonymous.ended, 1, anonymous.created), { ok: true });
        assert.equal(await store.get(anonymous.old.key), null);
        assert.deepEqual(await store.get(anonymous.created.key), anonymous.created);
      });

      test('regenerate over a changed old record reports the conflict and changes neither key', async () => {
        const { old, ended, created } = await regeneration(makeKey('u'));
        const changed = { ...old, version: 2, data: JSON.stringify({ n: 9 }) };
        assert.deepEqual(await store.set(changed, 1), { ok: true });
        assert.deepEqual(await store.regenerate!(ended, 1, created), { ok: false, current: 2 });
        assert.deepEqual(await store.get(old.key), changed);
        assert.equal(await store.get(created.key), null);
      });

      test('regenerate onto a key that holds a live record fails with SESSION_CONFLICT and changes neither key', async () => {
        const { old, ended, created } = await regeneration(makeKey('u'));
        const holder = { ...created, data: JSON.stringify({ holder: true }) };
        assert.deepEqual(await store.set(holder, 0), { ok: true });
        await assert.rejects(store.regenerate!(ended, 1, created), (err: { code?: string }) => err.code === 'SESSION_CONFLICT');
        assert.deepEqual(await store.get(old.key), old);
        assert.deepEqual(await store.get(created.key), holder);
      });

      test('destroyByUser while another client moves one of the user\'s sessions to a new key leaves no session of the user alive', async () => {
        // A login (one regenerate) or a renewal (the new record, then the old one rewritten as an
        // ownerless pointer) on another node, at the moment the user logs out everywhere: whichever
        // comes first, the new key must not outlive the call.
        const other = await peer();
        const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
        for (let i = 0; i < 300; i++) {
          const user = makeKey('u');
          const { old, ended, created } = await regeneration(user);
          const kept = makeRecord(clock, { userId: user });
          assert.deepEqual(await store.set(kept, 0), { ok: true });
          const move = async (): Promise<void> => {
            for (let d = 0; d < i % 3; d++) await tick();
            if (i % 2 === 0) {
              await other.regenerate!(ended, 1, created);
              return;
            }
            if (!(await other.set(created, 0)).ok) return;
            const now = clock.now();
            const pointer = { ...old, data: '"moved"', version: 2, userId: null, lastSeenAt: now + 5_000, expiresAt: now + 5_000 };
            if (!(await other.set(pointer, 1)).ok) await other.destroy(created.key);
          };
          await Promise.all([move(), store.destroyByUser(user, { except: [kept.key] })]);
          assert.equal(await store.get(created.key), null, `iteration ${i}: the moved session outlived destroyByUser`);
          assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [kept.key], `iteration ${i}`);
        }
      });
    }

    if (!factory.lacks?.sweep) test('sweep removes expired records and keeps live ones', async () => {
        assert.ok(store.sweep !== undefined);
        const live = makeRecord(clock);
        const dead = makeRecord(clock, { expiresAt: clock.now() + 10 });
        await store.set(live, 0);
        await store.set(dead, 0);
        clock.advance(20);
        const removed = await store.sweep();
        assert.ok(removed >= 1, `sweep removed ${removed}`);
        assert.ok(await store.get(live.key));
        assert.equal(await store.get(dead.key), null);
      });

    if (factory.reportsSwept) {
      /** Every report `client` gives while `fn` runs, in one list. */
      const reportsDuring = async (clients: SessionStore[], fn: () => Promise<unknown>): Promise<SweptSession[][]> => {
        const reports = clients.map(() => [] as SweptSession[]);
        const offs = clients.map((c, i) => c.onSwept!((swept) => void reports[i]!.push(...swept)));
        try {
          await fn();
        } finally {
          for (const off of offs) off();
        }
        return reports;
      };
      const byKey = (a: SweptSession, b: SweptSession): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

      test('a sweep reports exactly the timed-out sessions it deleted, with their owners', async () => {
        assert.ok(store.sweep !== undefined);
        // What earlier cases left expired goes first, so the report below is this case's alone.
        await store.sweep();
        const now = clock.now();
        const idle = makeRecord(clock, { userId: makeKey('u'), expiresAt: now + 10 });
        const absolute = makeRecord(clock, { absoluteExpiresAt: now + 10 });
        const live = makeRecord(clock, { userId: idle.userId });
        const context = makeRecord(clock, { key: 'user:' + makeKey(), expiresAt: now + 10 });
        const regenerated = makeRecord(clock, { userId: idle.userId });
        const renewed = makeRecord(clock, { userId: idle.userId });
        for (const r of [idle, absolute, live, context, regenerated, renewed]) assert.deepEqual(await store.set(r, 0), { ok: true });
        // Ended as a regeneration ends the old record: written already past its deadlines, not timed out.
        const ended = { ...regenerated, data: '"ended"', version: 2, lastSeenAt: now, expiresAt: now - 1, absoluteExpiresAt: now - 1 };
        assert.deepEqual(await store.set(ended, 1), { ok: true });
        // A renewal's pointer: live until its deadline, which is its lastSeenAt, then gone, not timed out.
        const pointer = { ...renewed, data: '"moved"', version: 2, userId: null, lastSeenAt: now + 10, expiresAt: now + 10, absoluteExpiresAt: now + 10 };
        assert.deepEqual(await store.set(pointer, 1), { ok: true });
        clock.advance(20);
        let removed = 0;
        const [reported] = await reportsDuring([store], async () => (removed = await store.sweep!()));
        assert.deepEqual(reported!.sort(byKey), [
          { key: idle.key, userId: idle.userId },
          { key: absolute.key, userId: null },
        ].sort(byKey));
        // The user context too, where the sweep removes it (RedisStore's leaves it to Redis's expiry).
        assert.ok(removed >= 2, `sweep removed ${removed}: the two sessions`);
        assert.equal(await store.get(context.key), null);
        assert.ok(await store.get(live.key));
        const [again] = await reportsDuring([store], () => store.sweep!());
        assert.deepEqual(again, [], 'a deleted session is reported once');
      });

      test('two clients sweeping at once report each deleted session once, by the client that deleted it', async () => {
        const other = await peer();
        const clients = other === store || factory.peersShareSweeps ? [store] : [store, other];
        const now = clock.now();
        const dead = Array.from({ length: 1_200 }, (_, i) => makeRecord(clock, { userId: i % 3 === 0 ? null : `u${i % 7}`, expiresAt: now + 10 }));
        for (let i = 0; i < dead.length; i += 100) {
          const results = await Promise.all(dead.slice(i, i + 100).map((r) => store.set(r, 0)));
          for (const res of results) assert.deepEqual(res, { ok: true });
        }
        clock.advance(20);
        const reports = await reportsDuring(clients, () => Promise.all([store.sweep!(), other.sweep!()]));
        const all = reports.flat();
        const mine = new Set(dead.map((r) => r.key));
        const ours = all.filter((s) => mine.has(s.key));
        assert.equal(new Set(ours.map((s) => s.key)).size, ours.length, 'no session reported twice');
        assert.deepEqual(ours.sort(byKey), dead.map((r) => ({ key: r.key, userId: r.userId })).sort(byKey));
      });
    }

    if (!factory.lacks?.changeFeed) test('the change feed reports a write made through another client', async () => {
      assert.ok(store.subscribe !== undefined);
      const other = await peer();
      const rec = makeRecord(clock);
      const seen = new Promise<string>((resolve) => {
        const off = store.subscribe!((key) => {
          if (key === rec.key) {
            off();
            resolve(key);
          }
        });
      });
      // Give subscription-based feeds (pub/sub, LISTEN) a moment to attach before writing.
      await new Promise((r) => setTimeout(r, 50));
      await other.set(rec, 0);
      const key = await Promise.race([seen, new Promise<string>((_, rej) => setTimeout(() => rej(new Error('no change event within 5 s')), 5_000))]);
      assert.equal(key, rec.key);
    });

    if (!factory.lacks?.changeFeed && !factory.lacks?.stamps) test('the change feed stamps sets and touches with the state left, and removals not, for any key', async () => {
      const other = await peer();
      // Spaces, the wire formats' markers and separators, and text beyond ASCII.
      const keys = [`=1:2 ${makeKey()} ! :`, `!${makeKey()}`, `ключ 名前 🛒 ${makeKey()} =`];
      const want: Array<[string, string | undefined]> = [];
      const got: Array<[string, string | undefined]> = [];
      let done: () => void = () => {};
      const all = new Promise<void>((resolve) => (done = resolve));
      const off = store.subscribe!((key, stamp) => {
        if (!keys.includes(key)) return;
        got.push([key, stamp]);
        if (got.length >= keys.length * 3) done();
      });
      try {
        await new Promise((r) => setTimeout(r, 50));
        for (const key of keys) {
          const rec = makeRecord(clock, { key });
          await other.set(rec, 0);
          want.push([key, stampOf(rec)]);
          const expiresAt = rec.expiresAt + 1_000;
          assert.equal(await other.touch(key, expiresAt, rec.lastSeenAt + 1), true);
          want.push([key, stampOf({ version: 1, expiresAt })]);
          await other.destroy(key);
          want.push([key, undefined]);
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000)))]);
        clearTimeout(timer);
        // Commit order holds per key; across keys a Redis Cluster delivers each node's messages on its own.
        const byKey = (list: Array<[string, string | undefined]>) => keys.map((k) => list.filter(([key]) => key === k));
        assert.equal(got.length, want.length);
        assert.deepEqual(byKey(got), byKey(want));
      } finally {
        off();
      }
    });
  });
}
