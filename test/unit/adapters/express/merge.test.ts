/** The three-way merge that replays plain `req.session` assignments after a compare-and-set conflict. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { merge3, jsonEqual } from '../../../../src/adapters/express/merge.js';

describe('merge3', () => {
  it('merge when only one side changed a key then that side wins, additions and deletions included', () => {
    assert.deepEqual(merge3({ a: 1, b: 2 }, { a: 1, b: 3, c: 4 }, { a: 1, b: 2 }), { a: 1, b: 3, c: 4 });
    assert.deepEqual(merge3({ a: 1, b: 2 }, { a: 1 }, { a: 5, b: 2 }), { a: 5 });
  });

  it('merge when both changed different keys, also inside one object, then both changes are kept', () => {
    assert.deepEqual(merge3({ n: 1 }, { n: 1, a: 'A' }, { n: 1, b: 'B' }), { n: 1, a: 'A', b: 'B' });
    assert.deepEqual(merge3({ p: { x: 1 } }, { p: { x: 1, y: 1 } }, { p: { x: 2 } }), { p: { x: 2, y: 1 } });
    assert.deepEqual(merge3({}, { p: { a: 1 } }, { p: { b: 1 } }), { p: { a: 1, b: 1 } }, 'an object both created merges from {}');
  });

  it('merge when both changed the same value then SESSION_CONFLICT names it, even when both wrote the same value', () => {
    assert.throws(() => merge3({ n: 1 }, { n: 2 }, { n: 3 }), { code: 'SESSION_CONFLICT', message: /req\.session\.n was changed/ });
    assert.throws(() => merge3({ n: 1 }, { n: 2 }, { n: 2 }), { code: 'SESSION_CONFLICT' }, 'two increments, not one');
    assert.throws(() => merge3({ p: { x: 1 } }, { p: { x: 2 } }, { p: { x: 3 } }), { message: /req\.session\.p\.x/ });
    assert.throws(() => merge3({ list: [1] }, { list: [1, 2] }, { list: [1, 3] }), { code: 'SESSION_CONFLICT' });
    assert.throws(() => merge3({ n: 1 }, {}, { n: 2 }), { code: 'SESSION_CONFLICT' }, 'deleted here, changed there');
  });

  it('jsonEqual when key order differs then values are still equal; arrays keep order', () => {
    assert.ok(jsonEqual({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }));
    assert.ok(!jsonEqual([1, 2], [2, 1]));
    assert.ok(!jsonEqual({ a: undefined }, {}));
  });
});
