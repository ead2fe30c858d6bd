/** The tiered store's awaited echoes: each recognised once, bounded per key and in all. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Echoes } from '../../../src/stores/tiered/echoes.js';

describe('tiered echoes', () => {
  it('take when the stamp was expected then recognises it once; a key expected again after its echoes came is recognised again', () => {
    const e = new Echoes();
    e.expect('k', '=1:100');
    e.expect('k', '=2:100');
    assert.equal(e.take('k', '=2:100'), true);
    assert.equal(e.take('k', '=2:100'), false, 'once only');
    assert.equal(e.take('k', '=1:100'), true);
    assert.equal(e.take('k', '=1:100'), false);
    e.expect('k', '=3:100');
    assert.equal(e.take('other', '=3:100'), false, 'per key');
    assert.equal(e.take('k', '=3:100'), true, 'a key whose entry went idle awaits again');
  });

  it('expect when more than 8 echoes of one key are awaited then the oldest is forgotten', () => {
    const e = new Echoes();
    for (let v = 1; v <= 9; v++) e.expect('k', `=${v}:1`);
    assert.equal(e.take('k', '=1:1'), false);
    for (let v = 2; v <= 9; v++) assert.equal(e.take('k', `=${v}:1`), true);
  });

  it('expect when many keys come and go then only keys still awaiting count towards the bound, and 10,000 of those drop them all', () => {
    const e = new Echoes();
    e.expect('early', '=1:1');
    for (let i = 0; i < 30_000; i++) {
      e.expect(`k${i}`, '=1:1');
      assert.equal(e.take(`k${i}`, '=1:1'), true);
    }
    assert.equal(e.take('early', '=1:1'), true, 'keys whose echoes came do not push out one still awaited');
    e.expect('early', '=2:1');
    for (let i = 0; i < 10_000; i++) e.expect(`w${i}`, '=1:1');
    assert.equal(e.take('early', '=2:1'), false, 'past 10,000 keys awaiting, all were dropped');
  });
});
