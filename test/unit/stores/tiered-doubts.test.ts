/** What TieredStore keeps of a key, owner or the whole store after a write of its own failed with its outcome unknown (src/stores/tiered/doubts.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Doubts } from '../../../src/stores/tiered/doubts.js';

const rec = (key: string, version: number, expiresAt = 1_000, userId: string | null = null) => ({ key, version, expiresAt, userId });

describe('tiered doubts', () => {
  it('doubts when a set failed then nothing older than the version it would leave is kept, and a record at or past it settles the doubt', () => {
    const d = new Doubts();
    assert.equal(d.none, true);
    d.setFailed('k', 3, 2);
    assert.equal(d.none, false);
    assert.equal(d.allows(rec('k', 2)), false, 'the version before the write');
    assert.equal(d.allows(rec('other', 2)), true, 'another key');
    assert.equal(d.allows(rec('k', 3)), true, 'the write landed');
    assert.equal(d.none, true);
    assert.equal(d.allows(rec('k', 2)), true, 'settled for good');
  });

  it('doubts when an update, touch or destroy failed then a key with no record settles it; a failed creation stays in doubt', () => {
    const d = new Doubts();
    d.setFailed('update', 5, 4);
    d.touchFailed('touch', 9_000, 2);
    d.destroyFailed('destroy');
    d.setFailed('create', 1, 0);
    for (const key of ['update', 'touch', 'destroy', 'create']) d.absent(key);
    assert.equal(d.allows(rec('update', 4)), true);
    assert.equal(d.allows(rec('touch', 2)), true);
    assert.equal(d.allows(rec('destroy', 7)), true);
    assert.equal(d.allows(rec('create', 0)), false, 'a creation may still land on a key with no record');
  });

  it('doubts when a touch failed then a record at its version with its deadline, or past its version, settles it; without a version only its deadline does', () => {
    const d = new Doubts();
    d.touchFailed('k', 9_000, 2);
    assert.equal(d.allows(rec('k', 2, 5_000)), false, 'the deadline before the touch');
    assert.equal(d.allows(rec('k', 2, 9_000)), true, 'the touch landed');
    d.touchFailed('k', 9_000, 2);
    assert.equal(d.allows(rec('k', 3, 5_000)), true, 'a later write: the touch can no longer apply');
    d.touchFailed('any', 9_000, undefined);
    assert.equal(d.allows(rec('any', 40, 5_000)), false);
    assert.equal(d.allows(rec('any', 40, 9_000)), true);
  });

  it('doubts when a destroy failed then no record settles it, but a destroy or (for a set) a set through the tier does', () => {
    const d = new Doubts();
    d.destroyFailed('k');
    assert.equal(d.allows(rec('k', 1_000)), false, 'a live record says nothing of a destroy still to land');
    d.written('k');
    assert.equal(d.allows(rec('k', 1_000)), false, 'a set does not settle a destroy');
    d.destroyed('k');
    assert.equal(d.allows(rec('k', 1)), true);
    d.setFailed('s', 4, 3);
    d.touchFailed('s', 9_000, 3);
    d.written('s');
    assert.equal(d.allows(rec('s', 2)), true, 'a set through the tier moved the version past both');
  });

  it('doubts when a destroyByUser or destroyAll failed then no record of that owner, or no session, is kept until one succeeds', () => {
    const d = new Doubts();
    d.userFailed('ada');
    assert.equal(d.allows(rec('k', 1, 1_000, 'ada')), false);
    assert.equal(d.allows(rec('k', 1, 1_000, 'bob')), true);
    d.userDestroyed('ada');
    assert.equal(d.allows(rec('k', 1, 1_000, 'ada')), true);
    d.allFailed();
    assert.equal(d.allows(rec('k', 1)), false);
    assert.equal(d.allows(rec('user:ada', 1)), true, 'a user context is not a session');
    d.allDestroyed();
    assert.equal(d.allows(rec('k', 1)), true);
    assert.equal(d.none, true);
  });

  it('doubts when more than 10,000 keys are in doubt then the oldest are forgotten first', () => {
    const d = new Doubts();
    for (let i = 0; i <= 10_000; i++) d.destroyFailed(`k${i}`);
    assert.equal(d.allows(rec('k0', 1)), true, 'the oldest forgotten');
    assert.equal(d.allows(rec('k1', 1)), false);
    assert.equal(d.allows(rec('k10000', 1)), false);
  });
});
