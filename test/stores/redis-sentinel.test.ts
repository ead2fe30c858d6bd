/** RedisStore through Redis Sentinel: a primary, a replica and one sentinel; the store follows a failover by itself. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { RedisStore } from '../../src/stores/redis/index.js';
import { ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { SessionRecord } from '../../src/core/store.js';
import { startRedis, startRedisSentinel, redisCommand, waitFor } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';

/** One primary, one replica of it, one sentinel watching the primary as `mymaster`. */
interface SentinelSet {
  readonly primary: RedisServer;
  readonly replica: RedisServer;
  readonly sentinel: RedisServer;
  /** Stops every server still running (by PID) and removes their folders. */
  dispose(): Promise<void>;
}

/** Starts the three servers and resolves once the replica is in sync and the sentinel knows it; on failure stops what was started. */
async function startSentinelSet(): Promise<SentinelSet> {
  const started: RedisServer[] = [];
  const dispose = async (): Promise<void> => { await Promise.all(started.map((s) => s.dispose())); };
  try {
    const primary = await startRedis();
    started.push(primary);
    const replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
    started.push(replica);
    await waitFor('the replica to sync', 10_000,
      async () => (await redisCommand(replica.port, ['INFO', 'replication'])).includes('master_link_status:up'));
    const sentinel = await startRedisSentinel(primary.port);
    started.push(sentinel);
    await waitFor('the sentinel to see the replica', 10_000,
      async () => (await redisCommand(sentinel.port, ['INFO', 'sentinel'])).includes('slaves=1'));
    return { primary, replica, sentinel, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** A RedisStore that finds the primary through `set`'s sentinel. */
function sentinelStore(set: SentinelSet, clock: ManualClock): RedisStore {
  return new RedisStore({ sentinel: { sentinels: [{ host: '127.0.0.1', port: set.sentinel.port }], name: 'mymaster' }, clock });
}

/** The replication offset a server reports (`master_repl_offset`). */
async function offset(port: number): Promise<number> {
  const info = await redisCommand(port, ['INFO', 'replication']);
  return Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('RedisStore through Sentinel', () => {
  let set: SentinelSet;
  before(async () => {
    set = await startSentinelSet();
  });
  after(async () => {
    await set?.dispose();
  });

  it('sentinel store when the primary is killed then calls fail fast during the failover and the same instance writes to the promoted replica', async (t) => {
    const { primary, replica } = set;
    const clock = new ManualClock();
    const store = sentinelStore(set, clock);
    try {
      const before: SessionRecord[] = [];
      for (let i = 0; i < 20; i++) {
        const rec = makeRecord(clock, { userId: 'failover-user' });
        assert.deepEqual(await store.set(rec, 0), { ok: true });
        before.push(rec);
      }
      // Replication is asynchronous: only writes the replica has received can survive a failover,
      // so wait until it caught up (this is what the test can promise; docs/stores.md says what cannot).
      await waitFor('the replica to catch up', 5_000, async () => (await offset(replica.port)) >= (await offset(primary.port)));

      await primary.kill();
      const start = Date.now();
      const fresh = makeRecord(clock, { userId: 'failover-user' });
      // Sentinel needs its down-after period plus an election: keep trying, bounded in time, with a pause
      // between attempts because a refused call returns at once.
      let failures = 0;
      while (Date.now() - start < 30_000) {
        const t0 = Date.now();
        try {
          if ((await store.set(fresh, 0)).ok) break;
        } catch (err) {
          failures++;
          assert.equal((err as { code?: string }).code, 'STORE_UNAVAILABLE');
          assert.ok(Date.now() - t0 < 3_000, `a call during the failover took ${Date.now() - t0} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      t.diagnostic(`${failures} calls failed fast during the failover`);
      const failoverMs = Date.now() - start;
      t.diagnostic(`first successful write ${failoverMs} ms after the primary was killed`);
      assert.ok((await store.get(fresh.key)) !== null, `no write succeeded within ${failoverMs} ms of the failover`);
      assert.match(await redisCommand(replica.port, ['INFO', 'replication']), /role:master/, 'the replica was promoted');
      for (const r of before) assert.deepEqual(await store.get(r.key), r, 'a replicated write survives the failover');
      assert.equal((await store.listByUser('failover-user')).length, 21);
    } finally {
      await store.close();
    }
  });
});

/** Concurrent writer loops in the load test. */
const WRITERS = 64;
/** Every this many acknowledged creates, the loop destroys the session it just created. */
const DESTROY_EVERY = 10;
/** Bound on the creates one loop attempts. */
const MAX_WRITES_PER_WRITER = 5_000;
/** Load before the primary is killed, in ms. */
const LOAD_BEFORE_KILL_MS = 1_000;
/** Load kept up after the first acknowledged write that started after the kill, in ms. */
const LOAD_AFTER_RECOVERY_MS = 2_000;
/** Bound on the time from the kill to that first acknowledged write, in ms. */
const PROMOTION_BOUND_MS = 30_000;
/** Bound on the whole load, in ms: the loops stop starting calls after it whatever happened. */
const LOAD_BOUND_MS = LOAD_BEFORE_KILL_MS + PROMOTION_BOUND_MS + LOAD_AFTER_RECOVERY_MS + 5_000;
/** Pause after a failed call, in ms, so a call refused at once does not spin. */
const PAUSE_AFTER_FAILURE_MS = 100;
/** The bound docs/stores.md states for every call while the primary is down (commandTimeoutMs is 2 000). */
const CALL_BOUND_MS = 3_000;

/** One acknowledged call: when it started and when it resolved, in performance.now() ms. */
interface Acked {
  readonly record: SessionRecord;
  readonly startedAt: number;
  readonly ackedAt: number;
}

/** What the writer loops saw. */
interface LoadLog {
  readonly writes: Acked[];
  readonly destroys: Acked[];
  /** Keys whose destroy failed: its outcome is unknown, so the key may be present or absent afterwards. */
  readonly unknownDestroys: Set<string>;
  /** Failed calls by `code` (`(none)` for an error without one, `SET_REFUSED` for a set that resolved not ok). */
  readonly errorCodes: Map<string, number>;
  failedWrites: number;
  /** Longest call, failed or acknowledged, in ms. */
  longestCallMs: number;
  longestCallWhat: string;
}

describe('RedisStore through Sentinel under load', () => {
  let set: SentinelSet;
  before(async () => {
    set = await startSentinelSet();
  });
  after(async () => {
    await set?.dispose();
  });

  it('sentinel failover under 64 writers when the primary is killed then every write acknowledged by the promoted replica is kept and the loss before the kill is measured', async (t) => {
    const { primary, replica } = set;
    const clock = new ManualClock();
    const store = sentinelStore(set, clock);
    const log: LoadLog = {
      writes: [], destroys: [], unknownDestroys: new Set(), errorCodes: new Map(),
      failedWrites: 0, longestCallMs: 0, longestCallWhat: '',
    };
    const loadStart = performance.now();
    const hardEnd = loadStart + LOAD_BOUND_MS;
    let stop = false;
    /** performance.now() once the killed primary's process has exited; Infinity before. */
    let killedAt = Infinity;
    /** performance.now() just before SIGKILL was sent. */
    let killSentAt = Infinity;
    /** The first write that started after killedAt and was acknowledged. */
    let firstAfterKill: Acked | null = null;

    const fail = (what: string, err: unknown, startedAt: number): void => {
      const code = (err as { code?: unknown } | null)?.code;
      const name = typeof code === 'string' ? code : '(none)';
      log.errorCodes.set(name, (log.errorCodes.get(name) ?? 0) + 1);
      note(what, startedAt);
    };
    const note = (what: string, startedAt: number): void => {
      const ms = performance.now() - startedAt;
      if (ms > log.longestCallMs) {
        log.longestCallMs = ms;
        log.longestCallWhat = what;
      }
    };

    const writer = async (id: number): Promise<void> => {
      let acked = 0;
      for (let n = 0; n < MAX_WRITES_PER_WRITER && !stop && performance.now() < hardEnd; n++) {
        const record = makeRecord(clock, { userId: `load-${id}`, data: JSON.stringify({ writer: id, n }), expiresAt: clock.now() + 600_000 });
        const startedAt = performance.now();
        try {
          const res = await store.set(record, 0);
          if (!res.ok) {
            log.errorCodes.set('SET_REFUSED', (log.errorCodes.get('SET_REFUSED') ?? 0) + 1);
            continue;
          }
        } catch (err) {
          log.failedWrites++;
          fail('set', err, startedAt);
          await sleep(PAUSE_AFTER_FAILURE_MS);
          continue;
        }
        const ack: Acked = { record, startedAt, ackedAt: performance.now() };
        note('set', startedAt);
        log.writes.push(ack);
        if (startedAt > killedAt && firstAfterKill === null) firstAfterKill = ack;
        if (++acked % DESTROY_EVERY !== 0) continue;
        const destroyStartedAt = performance.now();
        try {
          await store.destroy(record.key);
        } catch (err) {
          log.unknownDestroys.add(record.key);
          fail('destroy', err, destroyStartedAt);
          await sleep(PAUSE_AFTER_FAILURE_MS);
          continue;
        }
        note('destroy', destroyStartedAt);
        log.destroys.push({ record, startedAt: destroyStartedAt, ackedAt: performance.now() });
      }
    };

    let fresh: RedisStore | null = null;
    try {
      const loops = Array.from({ length: WRITERS }, (_, i) => writer(i));
      let promotedIn = -1;
      try {
        await sleep(LOAD_BEFORE_KILL_MS);
        killSentAt = performance.now();
        await primary.kill();
        killedAt = performance.now();
        for (let i = 0; i < PROMOTION_BOUND_MS / 20 && firstAfterKill === null; i++) await sleep(20);
        const first = firstAfterKill as Acked | null;
        if (first !== null) {
          promotedIn = first.ackedAt - killedAt;
          await sleep(LOAD_AFTER_RECOVERY_MS);
        }
      } finally {
        stop = true;
        await Promise.all(loops);
      }
      const loadMs = performance.now() - loadStart;
      assert.ok(promotedIn >= 0, `no write was acknowledged within ${PROMOTION_BOUND_MS} ms of the kill`);
      assert.match(await redisCommand(replica.port, ['INFO', 'replication']), /role:master/, 'the replica was promoted');

      // Read every acknowledged key back from the promoted replica through a store of its own.
      fresh = new RedisStore({ url: replica.url, clock });
      const keys = [...new Set([...log.writes, ...log.destroys].map((a) => a.record.key))];
      const found = new Map<string, SessionRecord | null>();
      for (let i = 0; i < keys.length; i += 500) {
        const chunk = keys.slice(i, i + 500);
        const got = await Promise.all(chunk.map((k) => fresh!.get(k)));
        chunk.forEach((k, j) => found.set(k, got[j] ?? null));
      }

      const destroyed = new Set(log.destroys.map((d) => d.record.key));
      const afterKill = (a: Acked): boolean => a.startedAt > killedAt;
      const writesBefore = log.writes.filter((a) => !afterKill(a));
      const writesAfter = log.writes.filter(afterKill);
      const destroysBefore = log.destroys.filter((a) => !afterKill(a));
      const destroysAfter = log.destroys.filter(afterKill);
      // Writes whose key no destroy (acknowledged or failed) touched are expected present; one absent is lost.
      const kept = (a: Acked): boolean => !destroyed.has(a.record.key) && !log.unknownDestroys.has(a.record.key);
      const isLost = (a: Acked): boolean => found.get(a.record.key) === null;
      const isResurrected = (a: Acked): boolean => found.get(a.record.key) !== null;
      const keptBefore = writesBefore.filter(kept);
      const keptAfter = writesAfter.filter(kept);
      const lostBefore = keptBefore.filter(isLost);
      const lostAfter = keptAfter.filter(isLost);
      const resurrectedBefore = destroysBefore.filter(isResurrected);
      const resurrectedAfter = destroysAfter.filter(isResurrected);
      // The writes most exposed to the kill: acknowledged by the old primary just before SIGKILL.
      const ackedBeforeSignal = writesBefore.filter((a) => a.ackedAt <= killSentAt).map((a) => a.ackedAt);
      const lastBeforeSignal = ackedBeforeSignal.reduce((m, x) => Math.max(m, x), -Infinity);
      const inLast100Ms = ackedBeforeSignal.filter((x) => x > killSentAt - 100).length;

      t.diagnostic(`load ${Math.round(loadMs)} ms, ${WRITERS} writers; first acknowledged write ${Math.round(promotedIn)} ms after the primary exited`);
      t.diagnostic(`acknowledged writes: ${log.writes.length} (${writesBefore.length} started before the kill, ${writesAfter.length} after); failed writes: ${log.failedWrites}`);
      t.diagnostic(`acknowledged destroys: ${log.destroys.length} (${destroysBefore.length} before the kill, ${destroysAfter.length} after); failed destroys: ${log.unknownDestroys.size}`);
      t.diagnostic(`before the kill: ${lostBefore.length} of ${keptBefore.length} acknowledged writes never destroyed lost, ${resurrectedBefore.length} of ${destroysBefore.length} acknowledged destroys resurrected`);
      t.diagnostic(`after the kill: ${lostAfter.length} of ${keptAfter.length} acknowledged writes never destroyed lost, ${resurrectedAfter.length} of ${destroysAfter.length} acknowledged destroys resurrected`);
      t.diagnostic(`old primary: ${inLast100Ms} writes acknowledged in the 100 ms before SIGKILL, the last ${(killSentAt - lastBeforeSignal).toFixed(1)} ms before it; `
        + `its process exit seen ${Math.round(killedAt - killSentAt)} ms after SIGKILL`);
      t.diagnostic(`errors by code: ${JSON.stringify(Object.fromEntries(log.errorCodes))}; longest call ${Math.round(log.longestCallMs)} ms (${log.longestCallWhat})`);

      // Every write the promoted replica acknowledged is there and whole, and every destroy it acknowledged holds.
      assert.equal(lostAfter.length, 0, `${lostAfter.length} writes acknowledged after the failover are missing`);
      assert.equal(resurrectedAfter.length, 0, `${resurrectedAfter.length} destroys acknowledged after the failover were undone`);
      for (const a of log.writes) {
        const got = found.get(a.record.key);
        if (got !== null && got !== undefined) assert.deepEqual(got, a.record, 'a record read back is the one written');
      }
      assert.ok(writesAfter.length > 0 && writesBefore.length > 0, 'writes were acknowledged both before and after the kill');
      // Failures are the documented ones, each within the documented bound.
      assert.deepEqual([...log.errorCodes.keys()].filter((c) => c !== 'STORE_UNAVAILABLE'), [], 'every failure is STORE_UNAVAILABLE');
      assert.ok(log.failedWrites > 0, 'writes failed while no primary was available');
      assert.ok(log.longestCallMs < CALL_BOUND_MS, `a ${log.longestCallWhat} took ${Math.round(log.longestCallMs)} ms`);
    } finally {
      stop = true;
      await fresh?.close();
      await store.close();
    }
  });
});
