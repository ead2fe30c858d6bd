/**
 * A store's own sweep timer, not a call to `sweep()`: with a short `sweepIntervalMs`, a session that
 * timed out is deleted and reported (`onSwept`) on its own, and a live one stays.
 */
import assert from 'node:assert/strict';
import type { SessionStore, SweptSession } from '../../src/core/store.js';
import { ManualClock, makeRecord } from '../../src/testing/store-suite.js';

/** `open(clock, sweepIntervalMs)`: the store under test, sweeping every `sweepIntervalMs`. */
export async function assertSweepsOnItsOwn(open: (clock: ManualClock, sweepIntervalMs: number) => SessionStore): Promise<void> {
  const clock = new ManualClock();
  const store = open(clock, 50);
  try {
    const swept: SweptSession[] = [];
    store.onSwept!((batch) => void swept.push(...batch));
    const live = makeRecord(clock);
    const dead = makeRecord(clock, { userId: 'swept-user', expiresAt: clock.now() + 10 });
    await store.set(live, 0);
    await store.set(dead, 0);
    clock.advance(20);
    const deadline = Date.now() + 5_000;
    while (!swept.some((s) => s.key === dead.key) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(swept, [{ key: dead.key, userId: 'swept-user' }], 'the timed-out session, reported by the timer');
    assert.ok(await store.get(live.key), 'the live one stays');
  } finally {
    await store.close();
  }
}
