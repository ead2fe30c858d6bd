/**
 * session.afterCommit(fn): callbacks run once the request's commit has stored what it changed (or found
 * nothing to store), in order, once; never for a commit that fails or a request that is abandoned.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rig, sleep, trip, view } from '../support.js';
import { sessionState } from '../../../src/core/session.js';
import type { Session } from '../../../src/core/session.js';
import type { Rig } from '../support.js';

type S = Session<Record<string, unknown>>;

const post = (cookie: string | undefined) => view('POST', cookie ? { cookie } : {});

/** What the store holds for the session, read synchronously (the backend is a MemoryStore). */
function storedData(r: Rig, s: S): unknown {
  const key = sessionState(s).key;
  const rec = key === null ? null : r.memory.getLocal(key);
  return rec ? JSON.parse(rec.data).d : null;
}

/** A stored session `{ n: 1 }` and its cookie. */
async function stored(r: Rig): Promise<string> {
  return (await trip(r.tether, undefined, (s) => s.set('n', 1))).cookie!;
}

/**
 * Runs `fn` with the process's uncaughtException listeners (node:test's, which would fail the test)
 * replaced by one that collects, and gives what was collected once the next ticks have run.
 */
async function uncaught(fn: (caught: readonly unknown[]) => Promise<void>): Promise<unknown[]> {
  const caught: unknown[] = [];
  const saved = process.rawListeners('uncaughtException') as Array<(err: unknown) => void>;
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', (err) => void caught.push(err));
  try {
    await fn(caught);
  } finally {
    // The next ticks first, which a failing `fn` must not leave to node:test's listeners either.
    await new Promise<void>((resolve) => setImmediate(resolve));
    process.removeAllListeners('uncaughtException');
    for (const l of saved) process.on('uncaughtException', l);
  }
  return caught;
}

describe('session.afterCommit', () => {
  it('afterCommit when the commit writes then the callbacks run in order after the write settled, with the store already holding it', async () => {
    const r = rig();
    const cookie = await stored(r);
    const s = await r.tether.open(post(cookie)) as S;
    const ran: Array<[string, unknown]> = [];
    s.afterCommit(() => ran.push(['first', storedData(r, s)]));
    s.set('n', 2);
    s.afterCommit(() => ran.push(['second', storedData(r, s)]));
    let release!: () => void;
    r.store.beforeSet = () => new Promise<void>((resolve) => { release = resolve; });
    const commit = r.tether.commit(s);
    await sleep(5);
    assert.deepEqual(ran, [], 'not while the write is in flight');
    release();
    await commit;
    assert.deepEqual(ran, [['first', { n: 2 }], ['second', { n: 2 }]]);
  });

  it('afterCommit when a new session is created then the callbacks run once it is stored', async () => {
    const r = rig();
    const s = await r.tether.open(post(undefined)) as S;
    const seen: unknown[] = [];
    s.set('n', 1);
    s.afterCommit(() => seen.push(storedData(r, s)));
    await r.tether.commit(s);
    assert.deepEqual(seen, [{ n: 1 }]);
  });

  it('afterCommit when the commit has nothing to write then commitNow answers at once and has run the callbacks, in order', async () => {
    const r = rig();
    const cookie = await stored(r);
    for (const method of ['GET', 'POST']) {
      const s = await r.tether.open(view(method, { cookie })) as S;
      const ran: string[] = [];
      s.afterCommit(() => ran.push('a'));
      s.afterCommit(() => ran.push('b'));
      const writes = r.store.writes;
      const out = r.tether.commitNow(s);
      assert.ok(Array.isArray(out), `${method}: committed without a promise`);
      assert.deepEqual(ran, ['a', 'b'], method);
      assert.equal(r.store.writes, writes, `${method}: nothing written`);
    }
    // A session never stored, with nothing worth storing: no store call at all.
    const fresh = await r.tether.open(post(undefined)) as S;
    let ran = 0;
    fresh.afterCommit(() => void ran++);
    assert.ok(Array.isArray(r.tether.commitNow(fresh)));
    assert.equal(ran, 1);
  });

  it('afterCommit when the commit waits for an update() not awaited then the callbacks run after its change is written, one registered meanwhile too', async () => {
    const r = rig();
    const cookie = await stored(r);
    const s = await r.tether.open(post(cookie)) as S;
    const ran: Array<[string, unknown]> = [];
    let go!: () => void;
    const gate = new Promise<void>((resolve) => { go = resolve; });
    s.afterCommit(() => ran.push(['before', storedData(r, s)]));
    void s.update(async (d) => {
      await gate;
      d.n = 3;
      // The commit is waiting for this function: the session is not committed yet.
      s.afterCommit(() => ran.push(['meanwhile', storedData(r, s)]));
    });
    const commit = r.tether.commit(s);
    await sleep(5);
    assert.deepEqual(ran, []);
    go();
    await commit;
    assert.deepEqual(ran, [['before', { n: 3 }], ['meanwhile', { n: 3 }]]);
  });

  it('afterCommit when the session is ended by destroy() or endNow then the callbacks run once its record is deleted', async () => {
    const r = rig();
    const destroyed = await r.tether.open(post(await stored(r))) as S;
    const key = sessionState(destroyed).key!;
    const seen: unknown[] = [];
    // Not refused on a destroyed session: the callback follows the deletion.
    destroyed.destroy();
    destroyed.afterCommit(() => seen.push(r.memory.getLocal(key)));
    await r.tether.commit(destroyed);
    assert.deepEqual(seen, [null]);

    const ended = await r.tether.open(post(await stored(r))) as S;
    const endedKey = sessionState(ended).key!;
    const seenEnded: unknown[] = [];
    ended.afterCommit(() => seenEnded.push(r.memory.getLocal(endedKey)));
    await r.tether.endNow(ended);
    assert.deepEqual(seenEnded, [null]);
  });

  it('afterCommit when endNow ends a session already committed then the callbacks, which ran after the first commit, do not run again', async () => {
    const r = rig();
    const s = await r.tether.open(post(await stored(r))) as S;
    let ran = 0;
    s.set('n', 2);
    s.afterCommit(() => void ran++);
    await r.tether.commit(s);
    assert.equal(ran, 1);
    await r.tether.endNow(s);
    assert.equal(ran, 1);
  });

  it('afterCommit when endNow ends a session while its commit waits for an update() then the callbacks run once, after the deletion', async () => {
    const r = rig();
    const s = await r.tether.open(post(await stored(r))) as S;
    const key = sessionState(s).key!;
    const seen: unknown[] = [];
    s.afterCommit(() => seen.push(r.memory.getLocal(key)));
    void s.update(() => new Promise<void>(() => {})).catch(() => {});
    const commit = r.tether.commit(s);
    await r.tether.endNow(s);
    await commit;
    assert.deepEqual(seen, [null]);
  });

  it('afterCommit when the request is abandoned then the callbacks never run, not even by a later endNow', async () => {
    const r = rig();
    const cookie = await stored(r);
    const s = await r.tether.open(post(cookie)) as S;
    let ran = 0;
    s.set('n', 2);
    s.afterCommit(() => void ran++);
    r.tether.abandon(s);
    await sleep(1);
    assert.equal(ran, 0);
    await r.tether.endNow(s);
    assert.equal(ran, 0);
  });

  for (const [name, fault] of [['rejects', 'reject'], ['hangs past storeTimeoutMs', 'hang']] as const) {
    it(`afterCommit when the store write ${name} then the commit fails STORE_UNAVAILABLE and the callbacks never run`, async () => {
      const r = rig({ storeTimeoutMs: 50 });
      const cookie = await stored(r);
      const s = await r.tether.open(post(cookie)) as S;
      let ran = 0;
      s.set('n', 2);
      s.afterCommit(() => void ran++);
      r.store.fail('set', fault);
      await assert.rejects(r.tether.commit(s), { code: 'STORE_UNAVAILABLE' });
      r.store.heal();
      r.tether.abandon(s);
      assert.equal(ran, 0);
    });
  }

  it('afterCommit when the session is too large to store then the commit fails SESSION_TOO_LARGE and the callbacks never run', async () => {
    const r = rig({ maxSessionBytes: 1024 });
    const cookie = await stored(r);
    const s = await r.tether.open(post(cookie)) as S;
    let ran = 0;
    s.set('big', 'x'.repeat(2048));
    s.afterCommit(() => void ran++);
    await assert.rejects(r.tether.commit(s), { code: 'SESSION_TOO_LARGE' });
    assert.equal(ran, 0);
  });

  it('afterCommit when a compare-and-set conflict is refused then the commit fails SESSION_CONFLICT and the callbacks never run', async () => {
    const a = rig();
    const b = rig({}, a);
    const cookie = await stored(a);
    const sa = await a.tether.open(post(cookie)) as S;
    const sb = await b.tether.open(post(cookie)) as S;
    let ran = 0;
    sa.set('n', 2); // outside update(): cannot be replayed
    sa.afterCommit(() => void ran++);
    sb.set('n', 3);
    await b.tether.commit(sb);
    await assert.rejects(a.tether.commit(sa), { code: 'SESSION_CONFLICT' });
    assert.equal(ran, 0);
  });

  it('afterCommit when a compare-and-set conflict replays the update() functions then the callbacks run once, after the final write', async () => {
    const a = rig();
    const b = rig({}, a);
    const cookie = await stored(a);
    const sa = await a.tether.open(post(cookie)) as S;
    const sb = await b.tether.open(post(cookie)) as S;
    const seen: unknown[] = [];
    await sa.update((d) => void (d.n = Number(d.n) + 10));
    sa.afterCommit(() => seen.push(storedData(a, sa)));
    await sb.update((d) => void (d.n = Number(d.n) + 100));
    await b.tether.commit(sb);
    await a.tether.commit(sa);
    assert.equal(a.tether.stats().replays, 1, 'the write was replayed');
    assert.deepEqual(seen, [{ n: 111 }]);
  });

  it('afterCommit when the session is committed or abandoned then it throws SESSION_COMMITTED', async () => {
    const r = rig();
    const committed = (await trip(r.tether, undefined, (s) => s.set('n', 1))).session as S;
    assert.throws(() => committed.afterCommit(() => {}), { code: 'SESSION_COMMITTED', status: 500 });
    const abandoned = await r.tether.open(post(undefined)) as S;
    r.tether.abandon(abandoned);
    assert.throws(() => abandoned.afterCommit(() => {}), { code: 'SESSION_COMMITTED' });
    // While the commit writes, too: it has taken the callbacks it will run.
    const writing = await r.tether.open(post(undefined)) as S;
    writing.set('n', 1);
    const commit = r.tether.commit(writing);
    assert.throws(() => writing.afterCommit(() => {}), { code: 'SESSION_COMMITTED' });
    await commit;
  });

  for (const path of ['a write', 'nothing to write']) {
    it(`afterCommit when a callback throws after ${path} then the commit succeeds, the next callback runs and the error is thrown again, uncaught, on the next tick`, async () => {
      const r = rig();
      const cookie = await stored(r);
      const boom = new Error('callback failed');
      const ran: string[] = [];
      let cookies: string[] | undefined;
      const caught = await uncaught(async (sofar) => {
        const s = await r.tether.open(post(cookie)) as S;
        if (path === 'a write') s.set('n', 2);
        s.afterCommit(() => { ran.push('first'); throw boom; });
        s.afterCommit(() => void ran.push('second'));
        cookies = await r.tether.commit(s);
        assert.deepEqual(ran, ['first', 'second']);
        assert.deepEqual(sofar, [], 'not thrown within the commit');
      });
      assert.ok(Array.isArray(cookies));
      assert.deepEqual(caught, [boom]);
      assert.equal(r.tether.stats().gateHolding, 0, 'the gate was given back');
      assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.get('n'), path === 'a write' ? 2 : 1);
    });
  }

  it('afterCommit when given something other than a function then it throws a TypeError at once and the commit runs as without it', async () => {
    const r = rig();
    const cookie = await stored(r);
    const s = await r.tether.open(post(cookie)) as S;
    s.set('n', 2);
    for (const bad of [undefined, null, 'fn', {}]) {
      assert.throws(() => s.afterCommit(bad as () => void), { name: 'TypeError', message: /takes a function/ });
    }
    assert.equal(sessionState(s).afterCommit, null, 'nothing was registered');
    assert.ok(Array.isArray(await r.tether.commit(s)));
    assert.equal(storedData(r, s) !== null && (storedData(r, s) as { n: number }).n, 2);
  });

  it('afterCommit when a request never calls it then its session state holds no callback list', async () => {
    const r = rig();
    const t = await trip(r.tether, await stored(r), (s) => s.set('n', 2));
    assert.equal(sessionState(t.session).afterCommit, null);
  });
});
