/** TieredStore's local copies: kept packed like MemoryStore's records, coded later unless only the coded form fits. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCopies } from '../../../src/stores/tiered/local-copies.js';
import { TRAINING } from '../../../src/stores/memory/layout.js';
import type { SessionRecord } from '../../../src/core/store.js';

const now = 1_795_832_087_067;
const record = (i: number, data: string): SessionRecord => ({
  key: `key-${i}`, data, version: 1, userId: null, createdAt: now, lastSeenAt: now, expiresAt: now + 1_800_000, absoluteExpiresAt: now + 43_200_000,
});
const text = JSON.stringify({ d: { text: 'lorem ipsum dolor sit amet '.repeat(40) } });

/** Copies whose data code is trained (on records like `text`), emptied again. */
function trained(maxBytes: number): LocalCopies {
  const copies = new LocalCopies(maxBytes);
  for (let i = 0; i < TRAINING.records; i++) {
    copies.set(record(i, text.replace('lorem', `lorem${i}`)));
    copies.delete(copies.stored(`key-${i}`));
  }
  return copies;
}

describe('LocalCopies', () => {
  it('local copies when a copy fits maxBytes only coded then keep it coded at once', () => {
    const wide = trained(1 << 30);
    wide.set(record(1, text));
    const uncoded = wide.bytes;
    const copies = trained(uncoded - 1);
    copies.set(record(1, text));
    assert.equal(copies.size, 1, 'kept, not dropped');
    assert.ok(copies.bytes < uncoded);
    assert.equal(copies.live('key-1', now)?.data, text);
    // Too big even coded: not kept.
    const tiny = trained(200);
    tiny.set(record(1, text));
    assert.equal(tiny.size, 0);
  });
});
