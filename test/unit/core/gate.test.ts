/** The per-session gate: one holder per key at a time, in arrival order; a free key is taken without waiting. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionGate } from '../../../src/core/gate.js';

describe('session gate', () => {
  it('tryAcquire when the key is free then holds it at once; when held or awaited then returns null', async () => {
    const gate = new SessionGate();
    const release = gate.tryAcquire('k');
    assert.ok(release, 'a free key is held at once');
    assert.equal(gate.tryAcquire('k'), null, 'a held key is not');
    assert.ok(gate.tryAcquire('other'), 'other keys are independent');
    const order: string[] = [];
    const waiter = gate.acquire('k', 1_000).then((r) => (order.push('waiter'), r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [], 'acquire waits behind the holder');
    release();
    const second = await waiter;
    assert.deepEqual(order, ['waiter']);
    assert.equal(gate.tryAcquire('k'), null, 'still held by the waiter');
    second();
    assert.ok(gate.tryAcquire('k'), 'free again once everyone released');
  });

  it('acquire when the holder keeps the key past the bound then fails SESSION_BUSY, and the key frees once the holder releases', async () => {
    const gate = new SessionGate();
    const release = gate.tryAcquire('k')!;
    await assert.rejects(gate.acquire('k', 30), { code: 'SESSION_BUSY' });
    release();
    await new Promise((r) => setImmediate(r));
    assert.ok(gate.tryAcquire('k'), 'the timed-out turn was given away');
    assert.equal(gate.waiting, 0, 'the turn that gave up waits no more');
    assert.equal(gate.holding, 1);
  });

  it('acquire when several wait then each gets the key in arrival order, a turn that gave up is skipped, and a second release is a no-op', async () => {
    const gate = new SessionGate();
    const first = gate.tryAcquire('k')!;
    const order: string[] = [];
    const a = gate.acquire('k', 1_000).then((r) => (order.push('a'), r));
    const quitter = gate.acquire('k', 20);
    const b = gate.acquire('k', 1_000).then((r) => (order.push('b'), r));
    await assert.rejects(quitter, { code: 'SESSION_BUSY' });
    assert.equal(gate.waiting, 2, 'two queued; the one that gave up is not counted');
    assert.equal(gate.holding, 1);
    first();
    first();
    const releaseA = await a;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['a'], 'a second release of the first holder handed nothing on');
    releaseA();
    const releaseB = await b;
    assert.deepEqual(order, ['a', 'b']);
    assert.equal(gate.waiting, 0);
    assert.equal(gate.holding, 1);
    releaseB();
    assert.equal(gate.waiting, 0);
    assert.equal(gate.holding, 0);
    assert.ok(gate.tryAcquire('k'), 'free once the last holder released');
  });

  it('waiting and holding when writers hold different keys then count holders apart from those queued', async () => {
    const gate = new SessionGate();
    const held = ['a', 'b', 'c'].map((k) => gate.tryAcquire(k)!);
    assert.deepEqual([gate.waiting, gate.holding], [0, 3], 'three holders, no one waits');
    const queued = [gate.acquire('a', 1_000), gate.acquire('a', 1_000)];
    assert.deepEqual([gate.waiting, gate.holding], [2, 3]);
    held[0]!();
    const next = await queued[0]!;
    assert.deepEqual([gate.waiting, gate.holding], [1, 3], 'the first waiter now holds a');
    next();
    (await queued[1]!)();
    held[1]!();
    held[2]!();
    assert.deepEqual([gate.waiting, gate.holding], [0, 0]);
  });

  it('release then keeps the key as free, and holding it again reuses that entry; past the free limit the oldest free keys leave first', () => {
    const gate = new SessionGate(3);
    for (const k of ['a', 'b', 'c']) gate.tryAcquire(k)!();
    assert.equal(gate.size, 3, 'released keys stay, free');
    gate.tryAcquire('a')!();
    assert.equal(gate.size, 3, 'holding a free key again adds no entry');
    gate.tryAcquire('d')!();
    assert.equal(gate.size, 3, 'a fourth free key drops one');
    assert.equal(gate.waiting, 0);
    for (const k of ['a', 'b', 'c', 'd']) assert.ok(gate.tryAcquire(k), `${k} is free, kept or not`);
  });

  it('release past the free limit when the oldest keys are held then drops only free ones, and the held keys stay held', async () => {
    const gate = new SessionGate(2);
    const held = ['h1', 'h2'].map((k) => gate.tryAcquire(k)!);
    for (let i = 0; i < 50; i++) gate.tryAcquire(`k${i}`)!();
    assert.equal(gate.size, 4, 'the two held keys and two free ones');
    assert.equal(gate.tryAcquire('h1'), null, 'h1 is still held');
    assert.equal(gate.tryAcquire('h2'), null, 'h2 is still held');
    const waiter = gate.acquire('h1', 1_000);
    held[0]!();
    const next = await waiter;
    assert.equal(gate.tryAcquire('h1'), null, 'handed to its waiter, not freed');
    next();
    held[1]!();
    assert.equal(gate.waiting, 0);
    assert.ok(gate.size <= 2, `at most the free limit once nothing is held (${gate.size})`);
    assert.ok(gate.tryAcquire('h1') && gate.tryAcquire('h2'), 'both free again');
  });

  it('acquire of a key that is free (kept after a release) then holds it at once', async () => {
    const gate = new SessionGate();
    gate.tryAcquire('k')!();
    const release = await gate.acquire('k', 1_000);
    assert.equal(gate.tryAcquire('k'), null);
    release();
    assert.ok(gate.tryAcquire('k'));
  });
});
