/** The shop's count of live sessions on this node: each session counted within its own idle timeout. Manual clock. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ActiveSessions } from '../../apps/shop/lib/active-sessions.js';

const IDLE = 1_000;
const REMEMBERED = 10_000;

describe('ActiveSessions', () => {
  it('count when sessions go unseen then each is counted until its own idle timeout, remembered ones the longer', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED);
    active.seen('kept', 'u1', true, 0);
    active.seen('plain', 'u2', false, 500);
    active.seen('anon', null, false, 600);
    assert.equal(active.count(1_000), 3);
    assert.equal(active.count(1_500), 2, 'an ordinary one ends a second after it was last seen');
    assert.equal(active.count(1_600), 1);
    assert.equal(active.count(9_999), 1);
    assert.equal(active.count(10_000), 0);
  });

  it('seen when a session becomes remembered or ordinary again then it counts by its timeout as last seen', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED);
    active.seen('s', 'u1', false, 0);
    active.seen('s', 'u1', true, 100);
    assert.equal(active.count(5_000), 1);
    active.seen('s', 'u1', false, 5_000);
    assert.equal(active.count(6_000), 0);
  });

  it('forgetUser when a user has ordinary and remembered sessions then forgets both', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED);
    active.seen('a', 'u1', false, 0);
    active.seen('b', 'u1', true, 0);
    active.seen('c', 'u2', true, 0);
    active.forgetUser('u1');
    assert.equal(active.count(0), 1);
  });

  it('seen when over max then the least recently seen goes first, of either kind', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED, 2);
    active.seen('kept', null, true, 0);
    active.seen('plain', null, false, 100);
    active.seen('new', null, false, 200);
    assert.equal(active.count(900), 2);
    assert.equal(active.count(1_150), 1, 'the remembered one went over the bound, not the ordinary one');
  });
});
