/**
 * Changes made after the engine committed a session, or dropped its changes, could never be stored:
 * the session's methods refuse them with SESSION_COMMITTED instead of losing them without a word.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rig, trip, view } from '../support.js';
import type { Session } from '../../../src/core/session.js';
import { isTetherError } from '../../../src/core/errors.js';

type S = Session<Record<string, unknown>>;

const CHANGES: Record<string, (s: S) => unknown> = {
  'set()': (s) => s.set('late', 1),
  'delete()': (s) => s.delete('n'),
  'update()': (s) => s.update((d) => { d.late = 1; }),
  'setUser()': (s) => s.setUser('u1'),
  'login()': (s) => s.login('u1'),
  'regenerate()': (s) => s.regenerate(),
  'destroy()': (s) => s.destroy(),
  'touch()': (s) => s.touch(),
};

async function refused(change: () => unknown): Promise<void> {
  await assert.rejects(async () => change(), (err: unknown) => {
    assert.ok(isTetherError(err));
    assert.equal(err.code, 'SESSION_COMMITTED');
    assert.equal(err.status, 500);
    assert.equal(err.name, 'SessionCommittedError');
    return true;
  });
}

describe('session changes after the commit', () => {
  for (const [name, change] of Object.entries(CHANGES)) {
    it(`${name} after the commit then throws SESSION_COMMITTED, reads still work and the stored session is unchanged`, async () => {
      const r = rig();
      const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 1));
      const t = await trip(r.tether, cookie, (s) => s.set('n', 2));
      await refused(() => change(t.session as S));
      assert.equal(t.session.get('n'), 2, 'reading after the commit still works');
      assert.deepEqual(t.session.snapshot(), { n: 2 });
      const after = await trip(r.tether, cookie, () => {}, 'GET');
      assert.deepEqual(after.session.snapshot(), { n: 2 });
      assert.equal(after.session.userId, null);
    });
  }

  it('a change after the session was abandoned then throws SESSION_COMMITTED', async () => {
    const r = rig();
    const s = await r.tether.open(view('POST'));
    r.tether.abandon(s);
    await refused(() => s.set('late', 1));
  });

  it('an update whose function awaits past the commit then rejects with SESSION_COMMITTED', async () => {
    const r = rig();
    const s = await r.tether.open(view('POST'));
    let go!: () => void;
    const gate = new Promise<void>((resolve) => { go = resolve; });
    const late = s.update(async (d) => {
      await gate;
      d.late = 1;
    });
    await r.tether.commit(s);
    go();
    await refused(() => late);
  });

  it('csrfToken after the commit answers the token the session has, and refuses to make one', async () => {
    const r = rig();
    const withToken = await trip(r.tether, undefined, (s) => void s.csrfToken);
    const token = withToken.session.csrfToken;
    assert.equal(typeof token, 'string');
    const without = await trip(r.tether, undefined, () => {}, 'GET');
    await refused(() => without.session.csrfToken);
  });

});
