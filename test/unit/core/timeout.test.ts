/** Store-call deadlines: one ticker for every pending call, running only while calls are pending. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines } from '../../../src/core/timeout.js';
import { createTether } from '../../../src/core/engine.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { trip } from '../support.js';
import type { SessionStore } from '../../../src/core/store.js';

describe('store call deadlines', () => {
  it('call when it never settles then fails STORE_UNAVAILABLE within the bound plus one tick', async () => {
    const d = new Deadlines(50);
    const started = Date.now();
    await assert.rejects(d.run(() => new Promise(() => {}), 'get'), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'STORE_UNAVAILABLE');
      assert.match(err.message!, /did not answer get within 50 ms/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 45 && took < 1_000, `failed after ${took} ms`);
    assert.equal(d.pending, 0);
  });

  it('call when the wall clock steps back or forward while it waits then its deadline is still the bound from its start', { timeout: 10_000 }, async () => {
    const wall = Date.now;
    for (const step of [-600_000, 600_000]) {
      const d = new Deadlines(100);
      const started = performance.now();
      const hung = d.run(() => new Promise(() => {}), 'get');
      // A step of the system clock (NTP, a VM resumed): Date.now jumps, the monotonic clock does not.
      Date.now = () => wall() + step;
      try {
        await assert.rejects(hung, { code: 'STORE_UNAVAILABLE' });
      } finally {
        Date.now = wall;
      }
      const took = performance.now() - started;
      assert.ok(took >= 95 && took < 5_000, `step ${step} ms: failed after ${Math.round(took)} ms`);
    }
  });

  it('calls when they answer, throw or reject then settle with their outcome and leave nothing pending', async () => {
    const d = new Deadlines(1_000);
    assert.equal(await d.run(() => Promise.resolve(7), 'get'), 7);
    assert.equal(await d.run(() => 8, 'get'), 8, 'a plain value from a buggy store');
    await assert.rejects(d.run(() => { throw new Error('boom'); }, 'set'), { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(d.run(() => Promise.reject(new Error('down')), 'touch'), (err: Error & { cause?: Error }) => err.cause?.message === 'down');
    assert.equal(d.pending, 0);
  });

  it('slow and hung calls when mixed then only the hung ones fail, each by its own deadline', async () => {
    // Margins of a few hundred milliseconds: a loaded machine runs timers late by tens of them.
    const d = new Deadlines(300);
    const hung = d.run(() => new Promise(() => {}), 'get');
    const slow = d.run(() => new Promise((r) => setTimeout(() => r('late but in time'), 20)), 'get');
    await new Promise((r) => setTimeout(r, 150));
    const later = d.run(() => new Promise(() => {}), 'set');
    const hungAt = hung.then(() => null, () => Date.now());
    const laterAt = later.then(() => null, () => Date.now());
    assert.equal(await slow, 'late but in time');
    const [a, b] = await Promise.all([hungAt, laterAt]);
    assert.ok(a !== null && b !== null, 'both hung calls failed');
    assert.ok(b - a >= 75, `the later call kept its own deadline (${b - a} ms apart)`);
  });

  it('calls when answered out of order behind a hung one then each settles once and the hung one still fails at its deadline', async () => {
    const d = new Deadlines(60);
    const hung = d.run(() => new Promise(() => {}), 'get');
    const hungAt = hung.then(() => null, (err: { code?: string }) => (assert.equal(err.code, 'STORE_UNAVAILABLE'), Date.now()));
    const started = Date.now();
    const resolvers: Array<(v: number) => void> = [];
    const answered = Array.from({ length: 20 }, () => d.run(() => new Promise<number>((r) => resolvers.push(r)), 'set'));
    assert.equal(d.pending, 21);
    // Answered in reverse, then one more that answers at once: all behind the hung call.
    resolvers.reverse().forEach((r, i) => r(i));
    assert.deepEqual(await Promise.all(answered), Array.from({ length: 20 }, (_, i) => 19 - i));
    assert.equal(await d.run(() => Promise.resolve('now'), 'get'), 'now');
    assert.equal(d.pending, 1, 'only the hung call waits');
    const failedAt = await hungAt;
    assert.ok(failedAt !== null && failedAt - started >= 50, `failed after ${failedAt! - started} ms`);
    assert.equal(d.pending, 0);
  });

  it('call when it answers or fails after its deadline then the timeout stands and it is not counted twice', async () => {
    let failures = 0;
    const d = new Deadlines(30, { onFailure: () => void failures++ });
    let answer!: (v: string) => void;
    let fail!: (e: Error) => void;
    const late = d.run(() => new Promise<string>((r) => { answer = r; }), 'get');
    const lateFailure = d.run(() => new Promise<string>((_, j) => { fail = j; }), 'set');
    await assert.rejects(late, { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(lateFailure, /did not answer set/);
    answer('too late');
    fail(new Error('too late as well'));
    await new Promise((r) => setImmediate(r));
    assert.equal(failures, 2);
    assert.equal(d.pending, 0);
    // The queue still works afterwards.
    assert.equal(await d.run(() => Promise.resolve(1), 'get'), 1);
    await assert.rejects(d.run(() => new Promise(() => {}), 'touch'), /did not answer touch/);
    assert.equal(d.pending, 0);
    assert.equal(failures, 3);
  });

  it('store whose getLocal throws then the request fails STORE_UNAVAILABLE and the error is counted; a hit skips get', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    let gets = 0;
    let broken = false;
    const store: SessionStore = {
      name: 'counting',
      get: (key) => (gets++, memory.get(key)),
      getLocal: (key) => {
        if (broken) throw new Error('disk on fire');
        return memory.getLocal(key);
      },
      set: (rec, expected) => memory.set(rec, expected),
      touch: (key, expiresAt, lastSeenAt) => memory.touch(key, expiresAt, lastSeenAt),
      destroy: (key) => memory.destroy(key),
      listByUser: (userId) => memory.listByUser(userId),
      destroyByUser: (userId, options) => memory.destroyByUser(userId, options),
      close: () => memory.close(),
    };
    const tether = createTether({ secrets: ['0123456789abcdef0123456789abcdef'], store });
    const first = await trip(tether, undefined, (s) => s.set('n', 1));
    await trip(tether, first.cookie, (s) => assert.equal(s.get('n'), 1), 'GET');
    assert.equal(gets, 0, 'answered by getLocal alone');
    broken = true;
    await assert.rejects(trip(tether, first.cookie, () => {}, 'GET'), { code: 'STORE_UNAVAILABLE' });
    assert.equal(tether.stats().storeErrors, 1);
    await memory.close();
  });

  it('callStore when a call into another store fails or outlasts storeTimeoutMs then it rejects STORE_UNAVAILABLE and counts as a store error', async () => {
    const tether = createTether({ secrets: ['0123456789abcdef0123456789abcdef'], storeTimeoutMs: 50 });
    assert.equal(await tether.callStore(async () => 'answer', 'readLegacy'), 'answer');
    await assert.rejects(tether.callStore(() => Promise.reject(new Error('ECONNREFUSED')), 'readLegacy'),
      (err: Error & { code?: string }) => err.code === 'STORE_UNAVAILABLE' && (err.cause as Error).message === 'ECONNREFUSED');
    await assert.rejects(tether.callStore(() => new Promise(() => {}), 'destroyLegacy'), { code: 'STORE_UNAVAILABLE', message: /did not answer destroyLegacy within 50 ms/ });
    assert.equal(tether.stats().storeErrors, 2);
    await tether.close();
  });
});
