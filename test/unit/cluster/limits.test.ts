/** The sliding-window count behind cluster-wide limits, and sharedLimiter outside a cluster. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingWindowLimiter, sharedLimiter } from '../../../src/cluster/limits.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { StoreClosedError, StoreUnavailableError } from '../../../src/core/errors.js';
import type { SessionStore } from '../../../src/core/store.js';

describe('sliding-window limiter', () => {
  it('key when it reaches the limit then further events are refused and not counted, other keys unaffected', () => {
    let now = 60_000;
    const l = new SlidingWindowLimiter(3, 60_000, 100, () => now);
    assert.deepEqual([1, 2, 3, 4, 5].map(() => l.take('a')), [true, true, true, false, false]);
    assert.equal(l.take('b'), true);
    now += 59_000;
    assert.equal(l.take('a'), false, 'still the same window');
  });

  it('next window when the previous one was full then its weight fades as the window goes by', () => {
    let now = 60_000;
    const l = new SlidingWindowLimiter(4, 60_000, 100, () => now);
    for (let i = 0; i < 4; i++) assert.equal(l.take('a'), true);
    now = 120_000 + 15_000; // a quarter into the next window: the previous counts 4 × 0.75 = 3
    assert.equal(l.take('a'), true);
    assert.equal(l.take('a'), false);
    now = 180_000 + 1; // two windows on: nothing carried over
    assert.deepEqual([1, 2, 3, 4, 5].map(() => l.take('a')), [true, true, true, true, false]);
  });

  it('many keys when past maxKeys then the least recently seen is dropped first', () => {
    const l = new SlidingWindowLimiter(1, 60_000, 2, () => 60_000);
    l.take('a');
    l.take('b');
    l.take('a');
    l.take('c');
    assert.equal(l.size, 2);
    assert.equal(l.take('a'), false, 'a was kept, and is at its limit');
    assert.equal(l.take('b'), true, 'b was dropped, so it starts over');
  });

  it('peek when asked then tells whether a take would be allowed, counting nothing and keeping no key', () => {
    let now = 60_000;
    const l = new SlidingWindowLimiter(2, 60_000, 100, () => now);
    assert.deepEqual([l.peek('a'), l.peek('a'), l.peek('a')], [true, true, true]);
    assert.equal(l.size, 0, 'a peek at an unknown key keeps nothing');
    l.take('a');
    assert.equal(l.peek('a'), true);
    l.take('a');
    assert.equal(l.peek('a'), false);
    now = 120_000 + 45_000; // three quarters into the next window: the previous counts 2 × 0.25 = 0.5
    assert.equal(l.peek('a'), true);
    assert.equal(l.take('a'), true);
    assert.equal(l.peek('a'), true, '0.5 + 1 is under the limit of 2');
    assert.equal(l.take('a'), true);
    assert.equal(l.peek('a'), false, '0.5 + 2 is not');
  });

  it('sharedLimiter outside a cluster then counts in this process and answers at once', () => {
    const l = sharedLimiter('unit', 2, 60_000);
    assert.deepEqual([l.peek('k'), l.take('k'), l.take('k'), l.peek('k'), l.take('k')], [true, true, true, false, false]);
  });

  it('sharedLimiter given a store without shared counts then counts in this process', () => {
    const l = sharedLimiter('unit.memory', 1, 60_000, { store: new MemoryStore() });
    assert.deepEqual([l.take('k'), l.take('k')], [true, false]);
  });

  it('sharedLimiter given a store whose limiter fails then an outage is counted here and anything else is thrown', async () => {
    let failure: Error = new StoreUnavailableError('down');
    const store = { limiter: () => ({ take: () => Promise.reject(failure), peek: () => Promise.reject(failure) }) } as unknown as SessionStore;
    const l = sharedLimiter('unit.failing', 2, 60_000, { store });
    assert.deepEqual([await l.take('k'), await l.take('k'), await l.peek('k'), await l.take('k')], [true, true, false, false]);
    failure = new StoreClosedError('test');
    assert.equal(await l.take('j'), true);
    failure = new TypeError('a bug');
    await assert.rejects(Promise.resolve().then(() => l.take('i')), TypeError);
    await assert.rejects(Promise.resolve().then(() => l.peek('i')), TypeError);
  });

  it('sharedLimiter given a bad name, limit or window then throws a TypeError', () => {
    assert.throws(() => sharedLimiter('has space', 1), TypeError);
    assert.throws(() => sharedLimiter('ok', 0), TypeError);
    assert.throws(() => sharedLimiter('ok', 1, 0), TypeError);
  });
});
