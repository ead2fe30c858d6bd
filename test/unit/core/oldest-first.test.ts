/** OldestFirst removes a Map's entries in insertion order, as `map.keys().next()` would find them. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OldestFirst } from '../../../src/core/oldest-first.js';

/** What `shift` must agree with: the first entry in insertion order, removed. */
function naiveShift<K, V>(map: Map<K, V>): [K, V] | undefined {
  const first = map.entries().next();
  if (first.done) return undefined;
  map.delete(first.value[0]);
  return first.value;
}

describe('OldestFirst', () => {
  it('shift when entries were added, deleted, re-added and cleared then removes the same entry as keys().next() every time', () => {
    const reference = new Map<number, number>();
    const map = new Map<number, number>();
    const oldest = new OldestFirst<number, number>();
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    let shifts = 0;
    for (let step = 0; step < 50_000; step++) {
      const roll = random();
      const key = Math.floor(random() * 500);
      if (roll < 0.5) {
        // Set after delete: the key moves to the end, as the caches' "newest" does.
        reference.delete(key);
        reference.set(key, step);
        map.delete(key);
        map.set(key, step);
      } else if (roll < 0.65) {
        reference.delete(key);
        map.delete(key);
      } else if (roll < 0.651) {
        reference.clear();
        map.clear();
      } else {
        shifts++;
        assert.deepEqual(oldest.shift(map), naiveShift(reference), `step ${step}`);
      }
      assert.equal(map.size, reference.size);
    }
    assert.ok(shifts > 10_000);
    assert.deepEqual([...map], [...reference]);
  });

  it('shift when the Map ran empty and was filled again then finds the new entries', () => {
    const map = new Map([['a', 1]]);
    const oldest = new OldestFirst<string, number>();
    assert.deepEqual(oldest.shift(map), ['a', 1]);
    assert.equal(oldest.shift(map), undefined);
    map.set('b', 2);
    map.set('c', 3);
    assert.deepEqual(oldest.shift(map), ['b', 2]);
    assert.deepEqual([...map], [['c', 3]]);
  });

  it('shift when given another Map then takes that Map\'s oldest, and the first Map\'s again after', () => {
    const first = new Map([[1, 'x'], [2, 'y']]);
    const second = new Map([[3, 'z']]);
    const oldest = new OldestFirst<number, string>();
    assert.deepEqual(oldest.shift(first), [1, 'x']);
    assert.deepEqual(oldest.shift(second), [3, 'z']);
    assert.deepEqual(oldest.shift(first), [2, 'y']);
    assert.equal(oldest.shift(second), undefined);
  });
});
