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
    release!();
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
    assert.equal(gate.waiting, 1);
  });

  it('acquire when several wait then each gets the key in arrival order, a turn that gave up is skipped, and a second release is a no-op', async () => {
    const gate = new SessionGate();
    const first = gate.tryAcquire('k')!;
    const order: string[] = [];
    const a = gate.acquire('k', 1_000).then((r) => (order.push('a'), r));
    const quitter = gate.acquire('k', 20);
    const b = gate.acquire('k', 1_000).then((r) => (order.push('b'), r));
    await assert.rejects(quitter, { code: 'SESSION_BUSY' });
    assert.equal(gate.waiting, 3, 'the holder and two queued; the one that gave up is not counted');
    first();
    first();
    const releaseA = await a;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['a'], 'a second release of the first holder handed nothing on');
    releaseA();
    const releaseB = await b;
    assert.deepEqual(order, ['a', 'b']);
    assert.equal(gate.waiting, 1);
    releaseB();
    assert.equal(gate.waiting, 0);
    assert.ok(gate.tryAcquire('k'), 'free once the last holder released');
  });
});
