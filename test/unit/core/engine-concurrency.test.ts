/** No lost updates, no resurrection, fail closed: the gate, compare-and-set across engines, and misbehaving stores. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hashId } from '../../../src/core/ids.js';
import { rig, trip, view, sleep, ManualClock, FaultyStore, SECRET_A } from '../support.js';
import { StaleReadStore, syncStore } from '../../fixtures/stores.js';
import { Tether } from '../../../src/core/engine.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import type { Rig } from '../support.js';

/** Two engines over one store: two processes' worth. */
function pair(options = {}): [Rig, Rig] {
  const a = rig(options);
  return [a, rig(options, a)];
}

const post = (cookie: string | undefined) => view('POST', cookie ? { cookie } : {});
const get = (cookie: string | undefined) => view('GET', cookie ? { cookie } : {});

describe('engine concurrency', () => {
  it('abandon() when the session\'s commit is writing then the gate stays held until the write settles, and the next writer loads what it wrote', async () => {
    const r = rig();
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    let done!: () => void;
    const writing = new Promise<void>((resolve) => { done = resolve; });
    const s = await r.tether.open(post(a.cookie));
    s.set('n', 2);
    r.store.beforeSet = () => writing;
    const commit = r.tether.commit(s);
    // The client went away while the write was under way.
    r.tether.abandon(s);
    assert.equal(r.tether.stats().gateHolding, 1, 'the commit still holds the gate');
    const next = r.tether.open(post(a.cookie));
    await sleep(10);
    assert.equal(r.tether.stats().gateWaiting, 1, 'the next writer waits for the write');
    r.store.beforeSet = undefined;
    done();
    await commit;
    const s2 = await next;
    assert.equal(s2.get('n'), 2, 'and then loads what it wrote');
    await r.tether.commit(s2);
    assert.equal(r.tether.stats().conflicts, 0);
  });

  it('two engines when their update() calls interleave on one session then no increment is lost', async () => {
    const [a, b] = pair();
    const { cookie } = await trip(a.tether, undefined, (s) => s.set('n', 0));
    const replays: string[] = [];
    b.tether.events.on('conflict', (m) => replays.push(m.reason));
    for (let i = 0; i < 10; i++) {
      const sa = await a.tether.open(post(cookie));
      const sb = await b.tether.open(post(cookie));
      await sa.update((d) => void (d.n = Number(d.n) + 1));
      await sb.update((d) => void (d.n = Number(d.n) + 1));
      await a.tether.commit(sa);
      await b.tether.commit(sb);
    }
    const workers = Array.from({ length: 30 }, async (_, i) => {
      const e = i % 2 ? a : b;
      const s = await e.tether.open(view('POST', { cookie: cookie! }));
      await sleep(Math.random() * 4);
      await s.update((d) => void (d.n = Number(d.n) + 1));
      await e.tether.commit(s);
    });
    await Promise.all(workers);
    const end = await trip(a.tether, cookie, () => {}, 'GET');
    assert.equal(end.session.get('n'), 50);
    assert.ok(replays.length >= 10 && replays.every((r) => r === 'replayed'));
  });

  it('update() when its function throws, the session ended, or it is asynchronous or a thenable then errors reject and every change replays', async () => {
    const [a, b] = pair();
    const { cookie } = await trip(a.tether, undefined, (s) => s.set('n', 0));
    const sa = await a.tether.open(post(cookie));
    const boom = new Error('boom');
    // A throwing function is a rejected promise, never a synchronous throw, and records nothing to replay.
    const thrown = sa.update(() => { throw boom; });
    assert.ok(thrown instanceof Promise);
    await assert.rejects(thrown, (err) => err === boom);
    const sync = sa.update((d) => void (d.n = Number(d.n) + 1));
    assert.ok(sync instanceof Promise);
    await sync;
    await sa.update(async (d) => { await sleep(1); d.n = Number(d.n) + 10; });
    const thenable = { then(done: () => void) { setTimeout(done, 1); } };
    await sa.update((d) => { d.n = Number(d.n) + 100; return thenable as unknown as Promise<void>; });
    assert.equal(sa.get('n'), 111);
    // Another engine writes first: all three changes are replayed on its value, the throwing one is not.
    const sb = await b.tether.open(post(cookie));
    sb.set('n', 1000);
    await b.tether.commit(sb);
    await a.tether.commit(sa);
    assert.equal((await trip(a.tether, cookie, () => {}, 'GET')).session.get('n'), 1111);
    const ended = await a.tether.open(post(cookie));
    ended.destroy();
    const late = ended.update((d) => void (d.n = 0));
    assert.ok(late instanceof Promise);
    await assert.rejects(late, { code: 'SESSION_ENDED' });
    a.tether.abandon(ended);
  });

  it('update() when its function writes a random ID or the time then a conflict replays it all the same, running it once more', async () => {
    const [a, b] = pair();
    const { cookie } = await trip(a.tether, undefined, (s) => s.set('cart', []));
    let runs = 0;
    const addLine = (item: string) => (d: Record<string, unknown>): void => {
      runs++;
      (d.cart as unknown[]).push({ item, line: randomUUID(), at: Date.now() + Math.random() });
    };
    const sa = await a.tether.open(post(cookie));
    const sb = await b.tether.open(post(cookie));
    await sa.update(addLine('A'));
    await sa.update(async (d) => { await sleep(1); d.savedAt = performance.now(); });
    await sb.update(addLine('B'));
    await b.tether.commit(sb);
    runs = 0;
    await a.tether.commit(sa);
    assert.equal(runs, 3, 'twice on the loaded data (it gave another text each time), once on the fresh data');
    const stored = (await trip(a.tether, cookie, () => {}, 'GET')).session.snapshot();
    assert.deepEqual((stored.cart as Array<{ item: string }>).map((l) => l.item), ['B', 'A']);
    assert.equal(typeof stored.savedAt, 'number');
  });

  it('update() when several overlap (Promise.all, or one while another awaits) then a conflict replays them all', async () => {
    for (const shape of ['all', 'nested'] as const) {
      const [a, b] = pair();
      const { cookie } = await trip(a.tether, undefined, (s) => s.set('n', 0));
      const sa = await a.tether.open(post(cookie));
      const sb = await b.tether.open(post(cookie));
      const slow = (k: string) => async (d: Record<string, unknown>): Promise<void> => { await sleep(2); d[k] = randomUUID(); d.n = Number(d.n) + 1; };
      if (shape === 'all') {
        await Promise.all([sa.update(slow('x')), sa.update(slow('y'))]);
      } else {
        const pending = sa.update(slow('x'));
        await sa.update((d) => void (d.n = Number(d.n) + 10));
        await pending;
      }
      sb.set('other', 1);
      await b.tether.commit(sb);
      await a.tether.commit(sa);
      const stored = (await trip(a.tether, cookie, () => {}, 'GET')).session.snapshot();
      assert.equal(stored.other, 1, shape);
      assert.equal(stored.n, shape === 'all' ? 2 : 11, shape);
    }
  });

  it('update() when its function writes and then throws, or a value it handed out or assigned is changed after it, then a conflict fails 409 SESSION_CONFLICT', async () => {
    for (const misuse of ['throws', 'escapes', 'assigned', 'assigned with a random ID'] as const) {
      const [a, b] = pair();
      const { cookie } = await trip(a.tether, undefined, (s) => s.set('cart', ['x']));
      const sa = await a.tether.open(post(cookie));
      const sb = await b.tether.open(post(cookie));
      if (misuse === 'throws') {
        await assert.rejects(sa.update((d) => { d.n = 1; throw new Error('half done'); }), /half done/);
      } else if (misuse === 'escapes') {
        let cart: unknown[] = [];
        await sa.update((d) => { cart = d.cart as unknown[]; });
        cart.push('y');
      } else if (misuse === 'assigned') {
        // An object the function assigned is plain, not a draft: its later change is found by the probe.
        await sa.update((d) => { d.list = []; });
        (sa.data.list as unknown[]).push('y');
      } else {
        // The same, from a function that also writes a random ID: the parts that differ from run to
        // run are set aside, and the change to the rest is still found.
        await sa.update((d) => { d.list = { id: randomUUID(), items: [] }; });
        ((sa.data.list as { items: unknown[] }).items).push('y');
      }
      sb.set('other', 1);
      await b.tether.commit(sb);
      await assert.rejects(a.tether.commit(sa), { code: 'SESSION_CONFLICT' }, misuse);
      assert.deepEqual((await trip(a.tether, cookie, () => {}, 'GET')).session.snapshot(), { cart: ['x'], other: 1 }, misuse);
    }
  });

  it('direct mutation when another engine wrote the session meanwhile then fails 409 SESSION_CONFLICT and the other write stands', async () => {
    const [a, b] = pair();
    const { cookie, session } = await trip(a.tether, undefined, (s) => s.set('n', 0));
    const events: string[] = [];
    b.tether.events.on('conflict', (m) => events.push(m.reason));
    const sa = await a.tether.open(post(cookie));
    const sb = await b.tether.open(post(cookie));
    sa.set('n', 1);
    sb.set('n', 2);
    await a.tether.commit(sa);
    await assert.rejects(b.tether.commit(sb), { code: 'SESSION_CONFLICT', status: 409 });
    assert.deepEqual(events, ['rejected']);
    assert.equal(JSON.parse((await a.memory.get(hashId(session.id!)))!.data).d.n, 1);
    // A request mixing update() with a direct change cannot be replayed either.
    const sc = await a.tether.open(post(cookie));
    const sd = await b.tether.open(post(cookie));
    await sc.update((d) => void (d.n = 10));
    await sd.update((d) => void (d.n = Number(d.n) + 1));
    sd.set('other', true);
    await a.tether.commit(sc);
    await assert.rejects(b.tether.commit(sd), { code: 'SESSION_CONFLICT' });
  });

  it('gate when a writer holds the session then a read-only open is not delayed and a second writer waits its turn', async () => {
    const { tether } = rig();
    const { cookie } = await trip(tether, undefined, (s) => s.set('n', 0));
    const order: string[] = [];
    const writer = await tether.open(post(cookie));
    const second = tether.open(post(cookie)).then((s) => {
      order.push('second writer in');
      return s;
    });
    const reader = await tether.open(get(cookie));
    order.push('reader in');
    await tether.commit(reader);
    await sleep(20);
    order.push('writer out');
    await tether.commit(writer);
    await tether.commit(await second);
    assert.deepEqual(order, ['reader in', 'writer out', 'second writer in']);
  });

  it('gate when held past gateTimeoutMs then the waiter fails 503 SESSION_BUSY and the gate still works afterwards', async () => {
    const { tether } = rig({ gateTimeoutMs: 50 });
    const { cookie } = await trip(tether, undefined, (s) => s.set('n', 0));
    const holder = await tether.open(post(cookie));
    await assert.rejects(tether.open(post(cookie)), { code: 'SESSION_BUSY', status: 503 });
    tether.abandon(holder);
    const next = await tether.open(post(cookie));
    await tether.commit(next);
  });

  for (const fault of ['hang', 'reject', 'throw'] as const) {
    it(`store when every call fails by ${fault} then open and commit fail STORE_UNAVAILABLE 503 within storeTimeoutMs and the gate is released`, async () => {
      const r = rig({ storeTimeoutMs: 100 });
      const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 0));
      r.store.fail('get', fault);
      const started = Date.now();
      await assert.rejects(r.tether.open(post(cookie)), (err: { code?: string; status?: number }) => err.code === 'STORE_UNAVAILABLE' && err.status === 503);
      assert.ok(Date.now() - started < 2_000, 'bounded by storeTimeoutMs');
      r.store.heal().fail('set', fault);
      const s = await r.tether.open(post(cookie));
      s.set('n', 1);
      await assert.rejects(r.tether.commit(s), { code: 'STORE_UNAVAILABLE', status: 503 });
      r.store.heal();
      // The failed requests released the gate: the next writer gets in at once.
      const after = await trip(r.tether, cookie, (x) => x.set('n', 2));
      assert.equal(after.session.get('n'), 2);
    });
  }

  it('store when it answers synchronously instead of with promises then every lifecycle step still works', async () => {
    const clock = new ManualClock();
    const tether = new Tether({ secrets: [SECRET_A], clock, store: syncStore(clock) });
    const a = await trip(tether, undefined, (s) => s.set('n', 1));
    const b = await trip(tether, a.cookie, (s) => s.update((d) => void (d.n = Number(d.n) + 1)));
    const c = await trip(tether, b.cookie, (s) => s.login('alice'));
    assert.equal((await tether.listUserSessions('alice')).length, 1);
    clock.advance(120_000);
    const d = await trip(tether, c.cookie, (s) => assert.equal(s.get('n'), 2), 'GET');
    await trip(tether, d.cookie, (s) => s.destroy());
    await trip(tether, c.cookie, (s) => assert.equal(s.isNew, true), 'GET');
  });

  it('store failure when it rejects then STORE_UNAVAILABLE carries the driver error as cause', async () => {
    const r = rig();
    r.store.fail('set', 'reject');
    const err = await trip(r.tether, undefined, (s) => s.set('n', 1)).catch((e: unknown) => e) as Error & { code: string };
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.match(String((err.cause as Error).message), /ECONNREFUSED/);
  });
});

describe('stale reads', () => {
  it('engine when it loads from a stale replica then its writes never overwrite the newer record', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const stale = new StaleReadStore(memory);
    const a = rig({}, { clock, memory, store: stale });
    const fresh = rig({}, { clock, memory, store: new FaultyStore(memory) });
    const first = await trip(a.tether, undefined, (s) => s.set('cart', ['a']));
    stale.freeze();
    await trip(a.tether, first.cookie, () => {}, 'GET');
    await trip(fresh.tether, first.cookie, (s) => s.update((d) => void (d.cart = ['a', 'b'])));
    await assert.rejects(trip(a.tether, first.cookie, (s) => s.update((d) => void (d.cart = [...(d.cart as string[]), 'c']))), { code: 'SESSION_CONFLICT' });
    await assert.rejects(trip(a.tether, first.cookie, (s) => s.set('cart', ['x'])), { code: 'SESSION_CONFLICT' });
    const end = await trip(fresh.tether, first.cookie, () => {}, 'GET');
    assert.deepEqual(end.session.get('cart'), ['a', 'b']);
  });
});

describe('no resurrection', () => {
  it('direct mutation when the session was destroyed while the request ran then fails 409 and nothing is re-created', async () => {
    const [a, b] = pair();
    const first = await trip(a.tether, undefined, (s) => s.login('alice'));
    const slow = await a.tether.open(post(first.cookie));
    await trip(b.tether, first.cookie, (s) => s.destroy());
    slow.set('cart', ['late']);
    await assert.rejects(a.tether.commit(slow), { code: 'SESSION_CONFLICT' });
    assert.equal(await a.memory.count(), 0);
    await trip(a.tether, first.cookie, (s) => assert.equal(s.isNew, true), 'GET');
  });

  it('update() when the session was destroyed while the request ran then fails 409 and nothing is re-created', async () => {
    const [a, b] = pair();
    const first = await trip(a.tether, undefined, (s) => s.login('alice'));
    const slow = await a.tether.open(post(first.cookie));
    await slow.update((d) => void (d.cart = ['late']));
    await trip(b.tether, first.cookie, (s) => s.destroy());
    await assert.rejects(a.tether.commit(slow), { code: 'SESSION_CONFLICT', message: /ended/ });
    assert.equal(await a.memory.count(), 0);
  });

  it('expiry touch when the session was destroyed while a read-only request ran then does not re-create it', async () => {
    const [a, b] = pair();
    const first = await trip(a.tether, undefined, (s) => s.set('n', 1));
    a.clock.advance(5 * 60_000);
    const reader = await a.tether.open(get(first.cookie));
    await trip(b.tether, first.cookie, (s) => s.destroy());
    await a.tether.commit(reader);
    assert.equal(await a.memory.count(), 0);
  });

  it('regenerate when the user was logged out everywhere while the request ran then fails 409 and creates no session', async () => {
    const [a, b] = pair();
    const first = await trip(a.tether, undefined, (s) => s.login('alice'));
    const slow = await a.tether.open(post(first.cookie));
    assert.equal(await b.tether.destroyUserSessions('alice'), 1);
    slow.regenerate();
    await assert.rejects(a.tether.commit(slow), { code: 'SESSION_CONFLICT' });
    assert.equal(await a.memory.count(), 0);
    assert.deepEqual(await a.tether.listUserSessions('alice'), []);
  });

  it('regenerate when another engine wrote the session meanwhile then that write is not lost', async () => {
    const [a, b] = pair();
    const first = await trip(a.tether, undefined, (s) => s.set('cart', ['a']));
    const slow = await a.tether.open(post(first.cookie));
    await trip(b.tether, first.cookie, (s) => s.update((d) => void (d.cart = [...(d.cart as string[]), 'b'])));
    slow.regenerate();
    const done = await a.tether.commit(slow).then((c) => c, (e: { code: string }) => e.code);
    if (Array.isArray(done)) {
      const t = await trip(a.tether, done[0]!.split(';')[0], () => {}, 'GET');
      assert.deepEqual(t.session.get('cart'), ['a', 'b'], 'the concurrent write survives the regeneration');
    } else {
      assert.equal(done, 'SESSION_CONFLICT');
    }
  });
  it('login with keep when another engine wrote the session meanwhile then it is replayed as a login without keep is: signed in, only the kept keys carried', async () => {
    for (const keep of [undefined, ['cart'], []] as const) {
      const [a, b] = pair();
      const first = await trip(a.tether, undefined, (s) => {
        s.set('cart', ['a']);
        s.set('flows', { checkout: 'planted' });
      });
      const login = await a.tether.open(post(first.cookie));
      await trip(b.tether, first.cookie, (s) => s.update((d) => void (d.cart = [...(d.cart as string[]), 'b'])));
      login.login('ada', keep === undefined ? undefined : { keep: [...keep] });
      const cookie = (await a.tether.commit(login)).find((c) => c.startsWith('sid='))!.split(';')[0];
      const after = await trip(a.tether, cookie, () => {}, 'GET');
      assert.equal(after.session.userId, 'ada', `keep ${String(keep)}`);
      const carried = { cart: ['a', 'b'], flows: { checkout: 'planted' } };
      assert.deepEqual(after.session.snapshot(), keep === undefined ? carried : Object.fromEntries(keep.map((k) => [k, carried[k]])), `keep ${String(keep)}`);
    }
  });
});
