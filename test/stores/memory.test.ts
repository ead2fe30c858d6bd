/** MemoryStore: the shared conformance suite plus its byte bound and LRU order. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';

runStoreSuite({
  name: 'memory',
  open: async (clock) => new MemoryStore({ clock, sweepIntervalMs: 0 }),
});

describe('MemoryStore bounds', () => {
  it('memory store when over maxBytes then evicts least recently used first and never exceeds the bound', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, maxBytes: 20_000, sweepIntervalMs: 0 });
    const recs = Array.from({ length: 100 }, () => makeRecord(clock, { data: 'x'.repeat(500) }));
    await store.set(recs[0]!, 0);
    for (const r of recs.slice(1)) {
      await store.get(recs[0]!.key); // keep the first one hot
      await store.set(r, 0);
      assert.ok(store.bytes <= 20_000);
    }
    assert.ok(await store.get(recs[0]!.key), 'the hot record survives');
    assert.equal(await store.get(recs[1]!.key), null, 'a cold record was evicted');
    assert.ok(store.evictions > 0);
    await store.close();
  });

  it('memory store when given an unknown option then throws OPTIONS_INVALID', () => {
    assert.throws(() => new MemoryStore({ maxByte: 1 } as never), { code: 'OPTIONS_INVALID', message: /options\.maxByte is not an option/ });
    assert.throws(() => new MemoryStore({ maxBytes: -1 }), { code: 'OPTIONS_INVALID', message: /maxBytes must be a positive integer/ });
  });
});
