/**
 * What the bundled stores' `getLocal` does with the engine's slot (SessionStore.getLocal): a key read
 * again through its slot gets the one record object its stored state was unpacked to, until that
 * state changes; every other caller gets a new object of its own.
 * @module
 */
import assert from 'node:assert/strict';
import type { LocalSlot, SessionRecord, SessionStore } from '../../src/core/store.js';
import type { ManualClock } from '../../src/testing/store-suite.js';

/** `rec` (version 1) must be held by `store` so that its getLocal answers it at once. */
export async function checkSlotReads(store: SessionStore, clock: ManualClock, rec: SessionRecord): Promise<void> {
  const getLocal = (slot?: LocalSlot): SessionRecord | null | undefined => store.getLocal!(rec.key, slot);
  const slot: LocalSlot = { local: undefined };
  const first = getLocal(slot);
  assert.deepEqual(first, rec);
  assert.equal(getLocal(slot), first, 'read again through its slot: the same object, nothing unpacked');
  const own = await store.get(rec.key);
  assert.deepEqual(own, rec);
  assert.notEqual(own, first, 'get gives the caller an object of its own');
  own.data = '{"changed":true}';
  own.version = 9;
  assert.deepEqual(getLocal(slot), rec, 'which it may change without reaching anyone else');
  assert.notEqual(getLocal(), first, 'as does getLocal without a slot');

  const next: SessionRecord = { ...rec, version: 2, data: '{"n":1}' };
  assert.deepEqual(await store.set(next, 1), { ok: true });
  const written = getLocal(slot);
  assert.deepEqual(written, next, 'written: the slot gives the new record');
  assert.equal(getLocal(slot), written);

  const expiresAt = next.expiresAt + 1_000;
  assert.equal(await store.touch(rec.key, expiresAt, clock.now()), true);
  const touched = getLocal(slot);
  assert.deepEqual(touched, { ...next, expiresAt, lastSeenAt: clock.now() }, 'touched: the new deadline');
  assert.equal(getLocal(slot), touched);

  clock.advance(expiresAt - clock.now());
  assert.equal(getLocal(slot) ?? null, null, 'past its deadline: nothing, even through the slot');
}
