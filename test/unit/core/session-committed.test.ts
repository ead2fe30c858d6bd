/**
 * Changes made after the engine committed a session, or dropped its changes, could never be stored:
 * the session's methods refuse them with SESSION_COMMITTED instead of losing them without a word.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rig, sleep, trip, view } from '../support.js';
import { sessionState } from '../../../src/core/session.js';
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

/**
 * A stored session `{ n: 1 }` opened for writing, with `before` applied, and an asynchronous update that
 * sets `late` once `go()` is called.
 */
async function pendingUpdate(options: Parameters<typeof rig>[0] = {}, before: (s: S) => void = () => {}) {
  const r = rig(options);
  const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 1));
  const s = await r.tether.open(view('POST', { cookie: cookie! }));
  before(s);
  let go!: () => void;
  const gate = new Promise<void>((resolve) => { go = resolve; });
  const late = s.update(async (d) => {
    await gate;
    d.late = 1;
  });
  /** The session as the next request sees it. */
  const stored = async (): Promise<unknown> => (await trip(r.tether, cookie, () => {}, 'GET')).session.snapshot();
  return { r, s, go, late, stored, cookie: cookie! };
}

describe('session changes after the commit', () => {
  for (const [name, change] of Object.entries(CHANGES)) {
    it(`${name} after the commit then throws SESSION_COMMITTED, reads still work and the stored session is unchanged`, async () => {
      const r = rig();
      const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 1));
      const t = await trip(r.tether, cookie, (s) => s.set('n', 2));
      await refused(() => change(t.session));
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

  it('an update not awaited when the handler returns then the commit waits for it, and its change is stored', async () => {
    const { r, s, go, late, stored } = await pendingUpdate();
    let committed = false;
    const commit = r.tether.commit(s).then((c) => { committed = true; return c; });
    const again = r.tether.commit(s);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(committed, false, 'the commit waits for the update');
    go();
    await late;
    await commit;
    await again;
    assert.deepEqual(await stored(), { n: 1, late: 1 });
  });

  it('an update that never settles then the commit goes ahead at gateTimeoutMs, and the late update rejects with SESSION_COMMITTED', async () => {
    const { r, s, go, late, stored } = await pendingUpdate({ gateTimeoutMs: 50 }, (x) => x.set('n', 2));
    const started = Date.now();
    await r.tether.commit(s);
    assert.ok(Date.now() - started >= 45, 'it waited about gateTimeoutMs');
    go();
    await refused(() => late);
    assert.deepEqual(await stored(), { n: 2 }, 'what was done before the commit is stored, the late change is not');
  });

  it('an update in flight when the session is abandoned before its commit then nothing is stored, the gate is given back at once and the update rejects with SESSION_COMMITTED', async () => {
    const { r, s, go, late, stored } = await pendingUpdate();
    r.tether.abandon(s);
    assert.equal(r.tether.stats().gateHolding, 0);
    go();
    await refused(() => late);
    assert.deepEqual(await stored(), { n: 1 });
  });

  it('abandon() when the commit waits for an update (its client went away) then the commit goes on, the update\'s change is stored and the gate is held until then', async () => {
    const { r, s, go, late, stored, cookie } = await pendingUpdate({}, (x) => x.set('n', 2));
    const commit = r.tether.commit(s);
    r.tether.abandon(s);
    assert.equal(r.tether.stats().gateHolding, 1, 'the waiting commit still holds the gate');
    const next = r.tether.open(view('POST', { cookie }));
    await sleep(10);
    assert.equal(r.tether.stats().gateWaiting, 1, 'the next writer waits for the commit');
    go();
    await late;
    await commit;
    const after = await next;
    assert.deepEqual(after.snapshot(), { n: 2, late: 1 }, 'and then loads what it stored');
    r.tether.abandon(after);
    assert.deepEqual(await stored(), { n: 2, late: 1 });
    assert.equal(r.tether.stats().gateHolding, 0);
  });

  for (const [name, leave] of [
    ['the session is abandoned before its commit (its client went away while the handler ran)', async (r: ReturnType<typeof rig>, s: S) => {
      r.tether.abandon(s);
    }],
    ['the commit stops waiting at gateTimeoutMs', (r: ReturnType<typeof rig>, s: S) => r.tether.commit(s)],
  ] as const) {
    it(`an update the handler did not await when ${name} then its SESSION_COMMITTED is no unhandled rejection`, async () => {
      const crashes: unknown[] = [];
      const onCrash = (err: unknown): void => void crashes.push(err);
      process.on('unhandledRejection', onCrash);
      try {
        const { r, s, go } = await pendingUpdate({ gateTimeoutMs: 30 });
        await leave(r, s);
        go();
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.deepEqual(crashes, [], 'an unhandled rejection ends the process');
      } finally {
        process.off('unhandledRejection', onCrash);
      }
    });
  }

  let waiting: Promise<string[]> | undefined;
  for (const [name, first] of [
    ['before any commit', async () => {}],
    ['after a commit that stopped waiting for it at gateTimeoutMs', (r: ReturnType<typeof rig>, s: S) => r.tether.commit(s)],
    ['while a commit waits for it', (r: ReturnType<typeof rig>, s: S) => {
      waiting = r.tether.commit(s);
    }],
  ] as const) {
    it(`endNow when an update is still running ${name} then the session ends at once, without waiting for the update`, async () => {
      // Set again by `first` (while a commit waits): kept at its declared type, not narrowed to undefined.
      waiting = undefined as Promise<string[]> | undefined;
      const { r, s, go, late, stored } = await pendingUpdate({ gateTimeoutMs: 1_000 });
      await first(r, s);
      let ended: string[] | undefined;
      const ending = r.tether.endNow(s).then(() => (ended = sessionState(s).setCookies));
      await Promise.race([ending, new Promise((resolve) => setTimeout(resolve, 400))]);
      assert.equal(r.store.calls.destroy, 1, 'the record is deleted now, not after another gateTimeoutMs');
      assert.match(ended?.[0] ?? '', /^sid=;/, 'and the response expires the cookie');
      assert.equal(r.tether.stats().gateHolding, 0);
      if (waiting) assert.deepEqual(await waiting, ended, 'the waiting commit answers what the ending sends');
      go();
      await refused(() => late);
      assert.deepEqual(await stored(), {}, 'the session is gone');
    });
  }

  it('an update whose function fails while the commit waits then the commit goes ahead with the other changes', async () => {
    const r = rig();
    const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 1));
    const s = await r.tether.open(view('POST', { cookie: cookie! }));
    s.set('n', 3);
    const failing = s.update(async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new Error('boom');
    });
    const commit = r.tether.commit(s);
    await assert.rejects(failing, /boom/);
    await commit;
    const after = await trip(r.tether, cookie, () => {}, 'GET');
    assert.deepEqual(after.session.snapshot(), { n: 3 });
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
