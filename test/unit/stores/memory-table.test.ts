/** RecordTable: the byte bound, and least-recently-used eviction to the resolution of two generations. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordTable, entryBytes } from '../../../src/stores/memory/table.js';

/** Keys k00…kNN with values of `size` characters: each entry is entryBytes('k00', value) bytes. */
const key = (i: number): string => `k${String(i).padStart(2, '0')}`;
const value = (i: number, size = 100): string => String(i).padEnd(size, '.');
const ENTRY = entryBytes(key(0), value(0));

function filled(capacity: number, n: number): { table: RecordTable; evicted: string[] } {
  const evicted: string[] = [];
  const table = new RecordTable(ENTRY * capacity, (k) => evicted.push(k));
  for (let i = 0; i < n; i++) table.put(key(i), value(i));
  return { table, evicted };
}

const keys = (table: RecordTable): string[] => [...table.entries()].map(([k]) => k);

describe('RecordTable', () => {
  it('record table when over the bound then evicts the oldest first, counts it, and stays within the bound', () => {
    const { table, evicted } = filled(10, 14);
    assert.deepEqual(evicted, [key(0), key(1), key(2), key(3)]);
    assert.equal(table.evictions, 4);
    assert.equal(table.size, 10);
    assert.equal(table.bytes, ENTRY * 10);
    assert.deepEqual(keys(table), Array.from({ length: 10 }, (_, i) => key(i + 4)));
  });

  it('record table when an entry of the older generation is used then it outlives every entry not used since', () => {
    // 10 entries fill the bound; past half of it the first ones became the older generation.
    const { table, evicted } = filled(10, 10);
    assert.equal(table.use(key(0)), value(0));
    assert.equal(table.use(key(3)), value(3));
    for (let i = 10; i < 18; i++) table.put(key(i), value(i));
    assert.ok(!evicted.includes(key(0)) && !evicted.includes(key(3)), `evicted ${evicted.join(' ')}`);
    assert.deepEqual(evicted.slice(0, 4), [key(1), key(2), key(4), key(5)]);
    assert.equal(table.peek(key(0)), value(0));
    assert.equal(table.peek(key(3)), value(3));
  });

  it('record table when an entry is used again and again then it survives any number of writes', () => {
    const { table, evicted } = filled(10, 1);
    for (let i = 1; i < 60; i++) {
      assert.equal(table.use(key(0)), value(0), `round ${i}`);
      table.put(key(i), value(i));
      assert.ok(table.bytes <= table.maxBytes);
    }
    assert.ok(!evicted.includes(key(0)));
    assert.equal(evicted.length, 50);
  });

  it('record table when entries are only peeked then their order does not change', () => {
    const { table, evicted } = filled(10, 10);
    for (let i = 0; i < 10; i++) assert.equal(table.peek(key(i)), value(i));
    table.put(key(10), value(10));
    assert.deepEqual(evicted, [key(0)]);
  });

  it('record table when a key is put again or deleted then its bytes are counted once, in either generation', () => {
    const { table } = filled(10, 10);
    table.put(key(0), value(0, 300)); // from the older generation, larger
    table.put(key(9), value(9, 50)); // from the younger, smaller
    assert.equal(table.size, 8, 'the larger value pushed out two entries');
    assert.equal(table.bytes, [...table.entries()].reduce((n, [k, v]) => n + entryBytes(k, v), 0));
    assert.equal(table.delete(key(0)), true);
    assert.equal(table.delete(key(0)), false);
    assert.equal(table.use(key(0)), undefined);
    assert.equal(table.bytes, [...table.entries()].reduce((n, [k, v]) => n + entryBytes(k, v), 0));
    table.clear();
    assert.equal(table.size, 0);
    assert.equal(table.bytes, 0);
  });

  it('record table when a key of the younger generation is put again then it keeps its place; one of the older moves to the younger', () => {
    const { table, evicted } = filled(10, 8); // k00–k05 flipped into the older generation, k06–k07 younger
    table.put(key(6), value(6, 150));
    table.put(key(1), value(1, 120));
    assert.deepEqual(keys(table), [key(0), key(2), key(3), key(4), key(5), key(6), key(7), key(1)]);
    assert.equal(table.peek(key(6)), value(6, 150));
    assert.equal(table.bytes, [...table.entries()].reduce((n, [k, v]) => n + entryBytes(k, v), 0));
    // Growing in place still keeps the bound: the oldest go first.
    table.put(key(7), value(7, 100 + ENTRY * 3));
    assert.deepEqual(evicted, [key(0), key(2)]);
    assert.ok(table.bytes <= table.maxBytes);
    assert.equal(table.bytes, [...table.entries()].reduce((n, [k, v]) => n + entryBytes(k, v), 0));
  });

  it('record table when one entry is larger than the bound then it is evicted at once', () => {
    const { table, evicted } = filled(2, 1);
    table.put(key(1), value(1, 1000));
    assert.deepEqual(evicted, [key(0), key(1)]);
    assert.equal(table.size, 0);
    assert.equal(table.bytes, 0);
  });

  it('record table when entries are deleted while iterating then every entry is visited once', () => {
    const { table } = filled(10, 10);
    table.use(key(2));
    const seen: string[] = [];
    for (const [k] of table.entries()) {
      seen.push(k);
      table.delete(k);
    }
    assert.equal(seen.length, 10);
    assert.equal(new Set(seen).size, 10);
    assert.equal(seen.at(-1), key(2), 'the used entry comes last');
    assert.equal(table.size, 0);
  });

  it('record table when a value is replaced by a shorter one then its place in the order stays and the bound counts the new size', () => {
    const { table, evicted } = filled(10, 10);
    const order = keys(table);
    // key 1 is in the older generation by now, key 9 in the younger.
    table.replace(key(1), value(1, 40));
    table.replace(key(9), value(9, 40));
    table.replace('absent', value(0, 40));
    assert.deepEqual(keys(table), order, 'no entry moved, none added');
    assert.equal(table.peek(key(1)), value(1, 40));
    assert.equal(table.bytes, ENTRY * 10 - 2 * 60);
    // The room freed is used: a small entry fits without evicting anything.
    assert.ok(entryBytes(key(10), value(10, 30)) <= 2 * 60);
    table.put(key(10), value(10, 30));
    assert.deepEqual(evicted, []);
    for (let i = 12; i < 30; i++) table.put(key(i), value(i));
    assert.ok(table.bytes <= ENTRY * 10);
    assert.equal(table.bytes, [...table.entries()].reduce((n, [k, v]) => n + entryBytes(k, v), 0), 'the count matches the entries held');
  });
});

