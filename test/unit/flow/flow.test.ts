/** Flows: server-enforced step order, back, re-posting earlier steps, completion once, resuming from the user context. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTether, MemoryStore, TetherError } from 'tether';
import { ManualClock } from 'tether/testing';
import { COMPLETING_HOLD_MS, defineFlow } from 'tether/flow';
import type { FlowContextStore, FlowEarlier } from 'tether/flow';
import { SECRET_A } from '../support.js';

function parseName(input: unknown): { name: string } {
  const name = (input as { name?: unknown } | null)?.name;
  if (typeof name !== 'string' || name.length === 0) throw new TetherError('VALIDATION_FAILED', 'name is required', 400);
  return { name };
}
const parseCard = (input: unknown): { last4: string } => ({ last4: String((input as { card: string }).card).slice(-4) });

/** Payment methods by shipping country: the payment step depends on the shipping step. */
const METHODS: Record<string, string[]> = { US: ['card', 'cod'], FR: ['card', 'sepa'] };
const parseCountry = (input: unknown): { country: string } => ({ country: String((input as { country: string }).country) });

/** A payment step checked against the shipping step before it; `seen` records what each call was given. */
function countryFlow(seen: FlowEarlier[] = []) {
  const parseMethod = (input: unknown, earlier: FlowEarlier): { method: string; currency: string } => {
    seen.push(earlier);
    const { country } = earlier.shipping as { country: string };
    const method = String((input as { method: string }).method);
    if (!METHODS[country]?.includes(method)) throw new TetherError('VALIDATION_FAILED', `${method} is not offered in ${country}`, 400);
    return { method, currency: country === 'US' ? 'USD' : 'EUR' };
  };
  return defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseCountry }, { name: 'payment', parse: parseMethod }, { name: 'review' }] });
}

/**
 * `store`, with `meanwhile` run once by the next update: before it reads (`before`), or after its first
 * read, so that its first write meets a compare-and-set conflict and it runs again on fresh data (`during`).
 */
function racing(store: FlowContextStore, when: 'before' | 'during', meanwhile: () => Promise<unknown>): FlowContextStore {
  let pending: (() => Promise<unknown>) | undefined = meanwhile;
  const take = async () => {
    const run = pending;
    pending = undefined;
    await run?.();
  };
  return {
    get: (userId) => store.get(userId),
    async update(userId, fn) {
      if (when === 'before') await take();
      return store.update(userId, async (ctx) => {
        if (when === 'during') await take();
        return fn(ctx);
      });
    },
  };
}

function setup() {
  const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A] });
  const flow = defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] });
  return { tether, flow, run: flow.using(tether.users) };
}

/** That `done` rejects with 409 FLOW_RUN_CHANGED carrying `result`, what the completion's action did. */
async function rejectsAsChanged(done: Promise<unknown>, result: unknown): Promise<void> {
  await assert.rejects(done, (err: TetherError & { result?: unknown }) => {
    assert.equal(err.code, 'FLOW_RUN_CHANGED');
    assert.equal(err.status, 409);
    assert.equal(err.result, result, 'what the action did is reported');
    return true;
  });
}

describe('flow', () => {
  it('flow when never started then views the first step with no data and no run', async () => {
    const { run } = setup();
    const v = await run.view('u1');
    assert.deepEqual(v, { flow: 'checkout', step: 'shipping', index: 0, steps: ['shipping', 'payment', 'review'], data: {}, runId: null });
  });

  it('flow when steps are posted in order then reaches the last step with every step data', async () => {
    const { run } = setup();
    const a = await run.submit('u1', 'shipping', { name: 'Ada' });
    assert.equal(a.step, 'payment');
    assert.ok(a.runId);
    const b = await run.submit('u1', 'payment', { card: '4242424242424242' });
    assert.equal(b.step, 'review');
    assert.deepEqual(b.data, { shipping: { name: 'Ada' }, payment: { last4: '4242' } });
    assert.equal(b.runId, a.runId);
  });

  it('flow on tether.users when a step would pass maxUserContextBytes then 413 USER_CONTEXT_TOO_LARGE and the run stays at its step', async () => {
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A], maxUserContextBytes: 2_048 });
    const run = defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] }).using(tether.users);
    const first = await run.submit('u1', 'shipping', { name: 'Ada' });
    await assert.rejects(run.submit('u1', 'shipping', { name: 'A'.repeat(3_000) }), { code: 'USER_CONTEXT_TOO_LARGE', status: 413 });
    const after = await run.view('u1');
    assert.equal(after.step, 'payment');
    assert.equal(after.runId, first.runId);
    assert.deepEqual(after.data, { shipping: { name: 'Ada' } });
  });

  it('flow when a later step is posted first then refuses with FLOW_STEP_OUT_OF_ORDER and changes nothing', async () => {
    const { run } = setup();
    await assert.rejects(run.submit('u1', 'payment', { card: '1' }), { code: 'FLOW_STEP_OUT_OF_ORDER', status: 409 });
    assert.equal((await run.view('u1')).runId, null);
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await assert.rejects(run.complete('u1', () => 'order'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
  });

  it('flow when a later step is posted first with invalid input then refuses with FLOW_STEP_OUT_OF_ORDER without parsing it', async () => {
    const { tether } = setup();
    let parsed = 0;
    const strictCard = (input: unknown): { last4: string } => {
      parsed++;
      throw new TetherError('VALIDATION_FAILED', `card is required, got ${JSON.stringify(input)}`, 400);
    };
    const run = defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: strictCard }, { name: 'review' }] }).using(tether.users);
    await assert.rejects(run.submit('u1', 'payment', {}), { code: 'FLOW_STEP_OUT_OF_ORDER', status: 409, message: /post "shipping" first/ });
    await assert.rejects(run.submit('u1', 'payment', null), { code: 'FLOW_STEP_OUT_OF_ORDER', status: 409 });
    assert.equal(parsed, 0, 'the input of a step posted too early is not parsed');
    assert.equal((await run.view('u1')).runId, null);
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await assert.rejects(run.submit('u1', 'payment', {}), { code: 'VALIDATION_FAILED', status: 400 }, 'once in order, the input is checked');
    assert.equal(parsed, 1);
    assert.equal((await run.view('u1')).step, 'payment');
  });

  it('flow when a step name it does not declare is posted then refuses with FLOW_STEP_UNKNOWN (404), not echoing the name, and changes nothing', async () => {
    const { run } = setup();
    for (const name of ['nope', '__proto__', 'constructor', '', 'x'.repeat(5000)]) {
      await assert.rejects(run.submit('u1', name, { name: 'Ada' }), (err: unknown) => {
        assert.ok(err instanceof TetherError, `${name.slice(0, 20)}: a TetherError, got ${String(err)}`);
        assert.equal(err.code, 'FLOW_STEP_UNKNOWN');
        assert.equal(err.status, 404);
        assert.equal(err.name, 'FlowStepUnknownError');
        assert.match(err.message, /shipping, payment, review/);
        if (name.length > 0) assert.ok(!err.message.includes(name), 'the message does not repeat the requested name');
        return true;
      });
    }
    assert.equal((await run.view('u1')).runId, null);
  });

  it('flow when a step input is invalid then the parse error propagates and the state is unchanged', async () => {
    const { run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await assert.rejects(run.submit('u1', 'shipping', { name: '' }), { code: 'VALIDATION_FAILED' });
    const v = await run.view('u1');
    assert.equal(v.step, 'payment');
    assert.deepEqual(v.data.shipping, { name: 'Ada' });
  });

  it('flow when going back then moves one step keeping data, and at the first step refuses', async () => {
    const { run } = setup();
    await assert.rejects(run.back('u1'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    assert.equal((await run.back('u1')).step, 'payment');
    const v = await run.back('u1');
    assert.equal(v.step, 'shipping');
    assert.deepEqual(v.data.payment, { last4: '4242' });
    await assert.rejects(run.back('u1'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
  });

  it('flow when an earlier step is re-posted then updates its data and continues from the step after it', async () => {
    const { run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    const v = await run.submit('u1', 'shipping', { name: 'Grace' });
    assert.equal(v.step, 'payment');
    assert.deepEqual(v.data, { shipping: { name: 'Grace' }, payment: { last4: '4242' } });
  });

  it('flow when a deploy adds a step before the one the user is at then the run resumes at it, and later steps and complete wait for it', async () => {
    const { tether, run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    const next = defineFlow({ name: 'checkout', steps: [{ name: 'terms', parse: (i) => i }, { name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] }).using(tether.users);
    const v = await next.view('u1');
    assert.deepEqual([v.step, v.index], ['terms', 0]);
    assert.deepEqual(v.data, { shipping: { name: 'Ada' }, payment: { last4: '4242' } }, 'what the run kept stays');
    await assert.rejects(next.submit('u1', 'payment', { card: '1111' }), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    let ran = 0;
    await assert.rejects(next.complete('u1', () => ran++), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    // Posting the new step is posting an earlier one: the steps after it may depend on it, so they are posted again.
    assert.equal((await next.submit('u1', 'terms', { accepted: true })).step, 'shipping');
    await next.submit('u1', 'shipping', { name: 'Ada' });
    await next.submit('u1', 'payment', { card: '4242' });
    assert.deepEqual(await next.complete('u1', ({ data }) => Object.keys(data)), ['shipping', 'payment', 'terms']);
    assert.equal(ran, 0);
  });

  it('flow when a deploy removes or renames steps then the run resumes at the first step it has not posted, and what removed steps kept is dropped', async () => {
    const { tether } = setup();
    const keep = (i: unknown) => i;
    const v1 = defineFlow({ name: 'f', steps: [{ name: 'a', parse: keep }, { name: 'b', parse: keep }, { name: 'c', parse: keep }] }).using(tether.users);
    for (const [step, input] of [['a', 1], ['b', 2], ['c', 3]] as const) await v1.submit('u1', step, input);
    await v1.submit('u2', 'a', 1);
    await v1.submit('u2', 'b', 2);
    const removed = defineFlow({ name: 'f', steps: [{ name: 'a', parse: keep }, { name: 'c', parse: keep }] }).using(tether.users);
    const done = await removed.view('u1');
    assert.deepEqual([done.step, done.index, done.data], ['complete', 2, { a: 1, c: 3 }]);
    assert.equal((await removed.back('u1')).step, 'c');
    const stored = (await tether.users.get('u1')).flows as Record<string, { updatedAt: number }>;
    assert.deepEqual(stored, { f: { runId: done.runId, step: 1, done: ['a'], data: { a: 1, c: 3 }, updatedAt: stored.f!.updatedAt } }, 'stored as the current steps read it');
    const renamed = defineFlow({ name: 'f', steps: [{ name: 'a', parse: keep }, { name: 'x', parse: keep }, { name: 'c', parse: keep }] }).using(tether.users);
    const atX = await renamed.view('u2');
    assert.deepEqual([atX.step, atX.data], ['x', { a: 1 }], 'b was posted, x was not');
    await assert.rejects(renamed.submit('u2', 'c', 3), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    assert.equal((await renamed.submit('u2', 'x', 9)).step, 'c');
  });

  it('flow when a node running a newer definition reads a run that a node running the older one is completing then its steps are refused FLOW_COMPLETING, not acknowledged and then lost', async () => {
    const { tether, run: older } = setup();
    const newer = defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseName }, { name: 'gift', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] }).using(tether.users);
    await older.submit('u1', 'shipping', { name: 'Ada' });
    await older.submit('u1', 'payment', { card: '4242' });
    let release!: () => void;
    const placing = new Promise<void>((r) => { release = r; });
    let started!: () => void;
    const inAction = new Promise<void>((r) => { started = r; });
    const done = older.complete('u1', async () => {
      started();
      await placing;
      return 'order-1';
    });
    await inAction;
    // The newer definition reads the run otherwise (a step added before payment), and so as a new state.
    assert.equal((await newer.view('u1')).step, 'gift');
    await assert.rejects(newer.submit('u1', 'shipping', { name: 'Bob' }), { code: 'FLOW_COMPLETING' });
    await assert.rejects(newer.submit('u1', 'gift', { name: 'Bob' }), { code: 'FLOW_COMPLETING' });
    await assert.rejects(newer.back('u1'), { code: 'FLOW_COMPLETING' });
    await assert.rejects(newer.reset('u1'), { code: 'FLOW_COMPLETING' });
    release();
    assert.equal(await done, 'order-1');
  });

  it('flow when a run was stored with only its step index (before posted steps were kept) then the index is used, within the current steps', async () => {
    const { tether, run } = setup();
    await tether.users.update('u1', (ctx) => void (ctx.flows = { checkout: { runId: 'r1', step: 1, data: { shipping: { name: 'Ada' } }, updatedAt: 0 } }));
    assert.deepEqual([(await run.view('u1')).step, (await run.view('u1')).runId], ['payment', 'r1']);
    await tether.users.update('u2', (ctx) => void (ctx.flows = { checkout: { runId: 'r2', step: 7, data: {}, updatedAt: 0 } }));
    assert.deepEqual([(await run.view('u2')).step, (await run.view('u2')).index], ['review', 2], 'past the end: at the last step, which completes');
    assert.equal((await run.submit('u1', 'payment', { card: '4242' })).step, 'review');
  });

  it('flow when opened through another engine on the same store then resumes at the same step', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const flow = defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] });
    const deviceA = flow.using(createTether({ store, secrets: [SECRET_A] }).users);
    const deviceB = flow.using(createTether({ store, secrets: [SECRET_A] }).users);
    await deviceA.submit('u1', 'shipping', { name: 'Ada' });
    const v = await deviceB.view('u1');
    assert.equal(v.step, 'payment');
    assert.deepEqual(v.data.shipping, { name: 'Ada' });
    assert.equal((await deviceB.view('u2')).step, 'shipping', 'another user has their own flow');
  });

  it('flow when another flow with the same step names has progressed then its state is not reused: this one starts at its first step, refuses a later one, and each keeps its own data and run (S42)', async () => {
    const { tether, run: checkout } = setup();
    const returns = defineFlow({ name: 'returns', steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] }).using(tether.users);
    const a = await checkout.submit('u1', 'shipping', { name: 'Ada' });
    await checkout.submit('u1', 'payment', { card: '4242424242424242' });
    assert.deepEqual(await returns.view('u1'), { flow: 'returns', step: 'shipping', index: 0, steps: ['shipping', 'payment', 'review'], data: {}, runId: null });
    await assert.rejects(returns.submit('u1', 'payment', { card: '1111' }), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    await assert.rejects(returns.complete('u1', () => 'refund'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    const r = await returns.submit('u1', 'shipping', { name: 'Grace' });
    assert.notEqual(r.runId, a.runId);
    assert.deepEqual(r.data, { shipping: { name: 'Grace' } });
    const seen: unknown[] = [];
    await checkout.complete('u1', ({ data, runId }) => { seen.push(data, runId); return 'order'; });
    assert.deepEqual(seen, [{ shipping: { name: 'Ada' }, payment: { last4: '4242' } }, a.runId], 'the action sees its own flow\'s data and run only');
    assert.equal((await returns.view('u1')).step, 'payment', 'completing one flow leaves the other where it was');
  });

  it('flow when completed twice concurrently then both see one idempotent action per run and the flow resets once', async () => {
    const { run, tether } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    const placed = new Map<string, string>();
    const action = async ({ runId }: { runId: string }) => {
      if (!placed.has(runId)) placed.set(runId, `order-${placed.size + 1}`);
      return placed.get(runId)!;
    };
    const opts = { onCompleted: (ctx: Record<string, unknown>) => { ctx.completions = Number(ctx.completions ?? 0) + 1; } };
    const [a, b] = await Promise.all([run.complete('u1', action, opts), run.complete('u1', action, opts)]);
    assert.equal(a, 'order-1');
    assert.equal(b, 'order-1');
    assert.equal(placed.size, 1);
    assert.equal((await tether.users.get('u1')).completions, 1, 'the effect of onCompleted was stored once');
    const v = await run.view('u1');
    assert.equal(v.step, 'shipping');
    assert.equal(v.runId, null);
    await assert.rejects(run.complete('u1', action), { code: 'FLOW_STEP_OUT_OF_ORDER' });
  });

  it('flow when another device posts a step again while complete() runs its action then that post is refused FLOW_COMPLETING, not acknowledged and then lost', async () => {
    const { run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    let release!: () => void;
    const placing = new Promise<void>((r) => { release = r; });
    let started!: () => void;
    const inAction = new Promise<void>((r) => { started = r; });
    const orders: Array<Record<string, unknown>> = [];
    const done = run.complete('u1', async ({ data }) => {
      started();
      await placing;
      orders.push(data);
      return 'order-1';
    });
    await inAction;
    await assert.rejects(run.submit('u1', 'shipping', { name: 'Bob' }), { code: 'FLOW_COMPLETING', status: 409 });
    await assert.rejects(run.back('u1'), { code: 'FLOW_COMPLETING' });
    await assert.rejects(run.reset('u1'), { code: 'FLOW_COMPLETING' });
    assert.equal((await run.view('u1')).step, 'review', 'viewing is allowed');
    release();
    assert.equal(await done, 'order-1');
    assert.deepEqual(orders, [{ shipping: { name: 'Ada' }, payment: { last4: '4242' } }]);
    assert.equal((await run.view('u1')).runId, null, 'the run ended');
    assert.equal((await run.submit('u1', 'shipping', { name: 'Bob' })).step, 'payment', 'a new run starts after it');
  });

  for (const when of ['before', 'during'] as const) {
    it(`flow when a step is posted again on another device as complete() takes the run (${when} its write reads) then the completion sees the run sent back a step, never places the replaced data, and the next one places the new`, async () => {
      const { run: other, flow, tether } = setup();
      await other.submit('u1', 'shipping', { name: 'Ada' });
      await other.submit('u1', 'payment', { card: '4242' });
      const device = flow.using(racing(tether.users, when, () => other.submit('u1', 'shipping', { name: 'Bea' })));
      const ordered: unknown[] = [];
      // The re-post sends the run back to payment: the completion's write finds it not ready, and says so.
      await assert.rejects(device.complete('u1', ({ data }) => void ordered.push(data)), { code: 'FLOW_STEP_OUT_OF_ORDER' });
      assert.equal(ordered.length, 0, 'nothing placed with the data the re-post replaced');
      await other.submit('u1', 'payment', { card: '1111' });
      await other.complete('u1', ({ data }) => void ordered.push(data));
      assert.deepEqual(ordered, [{ shipping: { name: 'Bea' }, payment: { last4: '1111' } }]);
    });
  }

  it('flow when a submit, back or reset names a run that a completion ended between its check and its write then it is refused FLOW_RUN_NOT_CURRENT in that write, and no next run is started', async () => {
    const { run: other, flow, tether } = setup();
    const first = await other.submit('u1', 'shipping', { name: 'Ada' });
    await other.submit('u1', 'payment', { card: '4242' });
    const runId = first.runId!;
    // The completion lands inside the submit's write: its first attempt meets the conflict and runs again
    // on the context the completion left, where the run is gone.
    const stale = flow.using(racing(tether.users, 'during', () => other.complete('u1', () => 'order-1')));
    await assert.rejects(stale.submit('u1', 'shipping', { name: 'Bob' }, { runId }), { code: 'FLOW_RUN_NOT_CURRENT', status: 409 });
    assert.deepEqual(await other.view('u1'), { flow: 'checkout', step: 'shipping', index: 0, steps: ['shipping', 'payment', 'review'], data: {}, runId: null }, 'no next run started with the stale step');
    await assert.rejects(other.back('u1', { runId }), { code: 'FLOW_RUN_NOT_CURRENT' });
    await assert.rejects(other.reset('u1', { runId }), { code: 'FLOW_RUN_NOT_CURRENT' });
    const next = await other.submit('u1', 'shipping', { name: 'Bea' });
    assert.notEqual(next.runId, runId);
    await assert.rejects(other.submit('u1', 'payment', { card: '1111' }, { runId }), { code: 'FLOW_RUN_NOT_CURRENT' });
    await assert.rejects(other.submit('u1', 'shipping', { name: 'Cy' }, { runId }), { code: 'FLOW_RUN_NOT_CURRENT' });
    assert.deepEqual((await other.view('u1')).data, { shipping: { name: 'Bea' } }, 'the next run is left as it was');
    // Naming the current run changes it as usual.
    assert.equal((await other.submit('u1', 'payment', { card: '1111' }, { runId: next.runId! })).step, 'review');
    assert.equal((await other.back('u1', { runId: next.runId! })).step, 'payment');
    await other.reset('u1', { runId: next.runId! });
    assert.equal((await other.view('u1')).runId, null);
  });

  it('flow when complete() names a run that ended between its check and its write, the next run ready, then it is refused FLOW_RUN_NOT_CURRENT and the next run is not completed in its place', async () => {
    const { run: other, flow, tether } = setup();
    await other.submit('u1', 'shipping', { name: 'Ada' });
    const { runId } = await other.submit('u1', 'payment', { card: '4242' });
    const stale = flow.using(racing(tether.users, 'during', async () => {
      await other.complete('u1', () => 'order-1');
      await other.submit('u1', 'shipping', { name: 'Bea' });
      await other.submit('u1', 'payment', { card: '1111' });
    }));
    const placed: unknown[] = [];
    await assert.rejects(stale.complete('u1', ({ data }) => void placed.push(data), { runId: runId! }), { code: 'FLOW_RUN_NOT_CURRENT', status: 409 });
    assert.deepEqual(placed, [], 'nothing placed');
    const next = await other.view('u1');
    assert.equal(next.step, 'review', 'the next run is left ready, not completed');
    assert.equal(await other.complete('u1', () => 'order-2', { runId: next.runId! }), 'order-2');
  });

  it('flow when the action fails then the run is given back: its steps can be posted again and it can complete', async () => {
    const { run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    await assert.rejects(run.complete('u1', () => { throw new TetherError('PAYMENT_DECLINED', 'declined', 402); }), { code: 'PAYMENT_DECLINED' });
    assert.equal((await run.submit('u1', 'payment', { card: '5555' })).step, 'review');
    assert.equal(await run.complete('u1', ({ data }) => (data.payment as { last4: string }).last4), '5555');
  });

  it('flow when a completion died holding its run then the run can be changed again after COMPLETING_HOLD_MS', async () => {
    const clock = new ManualClock();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0, clock }), secrets: [SECRET_A], clock });
    const run = defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseName }, { name: 'review' }] }).using(tether.users);
    await run.submit('u1', 'shipping', { name: 'Ada' });
    // What a process that died inside the action leaves behind.
    await tether.users.update('u1', (ctx) => { (ctx.flows as Record<string, { completing?: number }>).checkout!.completing = clock.now(); });
    await assert.rejects(run.submit('u1', 'shipping', { name: 'Bob' }), { code: 'FLOW_COMPLETING' });
    clock.advance(COMPLETING_HOLD_MS);
    assert.equal((await run.submit('u1', 'shipping', { name: 'Bob' })).step, 'review');
  });

  /** A user-context flow on a ManualClock, and a completion whose action waits for `release()`. */
  async function slowCompletion() {
    const clock = new ManualClock();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0, clock }), secrets: [SECRET_A], clock });
    const run = defineFlow({ name: 'checkout', steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] }).using(tether.users);
    const first = await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    let release!: () => void;
    const placing = new Promise<void>((r) => { release = r; });
    let started!: () => void;
    const inAction = new Promise<void>((r) => { started = r; });
    const orders: Array<{ runId: string; data: Record<string, unknown> }> = [];
    const completed: string[] = [];
    let renew!: () => Promise<boolean>;
    const done = run.complete('u1', async ({ runId, data, renewHold }) => {
      renew = renewHold;
      started();
      await placing;
      orders.push({ runId, data });
      return 'order-1';
    }, { onCompleted: (ctx, result) => void completed.push(result) });
    done.catch(() => {});
    await inAction;
    return { clock, tether, run, runId: first.runId!, release, done, orders, completed, renew: () => renew() };
  }

  for (const change of ['submit', 'back'] as const) {
    it(`flow when a ${change} lands after a slow action's hold lapsed then the completion does not end the run: it throws FLOW_RUN_CHANGED with the action's result, and the change is kept under a new runId`, async () => {
      const { clock, run, runId, release, done, orders, completed } = await slowCompletion();
      clock.advance(COMPLETING_HOLD_MS);
      const changed = change === 'submit' ? await run.submit('u1', 'shipping', { name: 'Bob' }) : await run.back('u1');
      assert.equal(changed.step, 'payment');
      release();
      await rejectsAsChanged(done, 'order-1');
      assert.deepEqual(completed, ['order-1'], 'onCompleted recorded the action once');
      const kept = await run.view('u1');
      assert.equal(kept.step, 'payment', 'the change is kept, not ended with the run');
      assert.deepEqual(kept.data.shipping, { name: change === 'submit' ? 'Bob' : 'Ada' });
      assert.notEqual(kept.runId, runId, 'a new runId: the next completion is not answered with what this one did');
      await assert.rejects(run.submit('u1', 'payment', { card: '1111' }, { runId }), { code: 'FLOW_RUN_NOT_CURRENT' });
      await run.submit('u1', 'payment', { card: '1111' });
      assert.equal(await run.complete('u1', ({ runId: id, data }) => { orders.push({ runId: id, data }); return 'order-2'; }), 'order-2');
      assert.deepEqual(orders.map((o) => o.runId), [runId, kept.runId]);
      assert.equal((await run.view('u1')).runId, null, 'that completion ended the run');
    });
  }

  it('flow when a reset lands after a slow action\'s hold lapsed then the completion records what the action did (onCompleted) once, also with another completion of the run, and throws FLOW_RUN_CHANGED with its result; the run stays reset', async () => {
    const { clock, run, runId, release, done, completed } = await slowCompletion();
    clock.advance(COMPLETING_HOLD_MS);
    // A retry of the confirm joins the lapsed hold, and its own hold lapses too.
    let again!: () => void;
    const second = run.complete('u1', () => new Promise<string>((r) => { again = () => r('order-1'); }), { onCompleted: (ctx, result) => void completed.push(result) });
    await new Promise((r) => setImmediate(r));
    clock.advance(COMPLETING_HOLD_MS);
    await run.reset('u1');
    release();
    await rejectsAsChanged(done, 'order-1');
    assert.deepEqual(completed, ['order-1'], 'onCompleted recorded the action');
    again();
    assert.equal(await second, 'order-1', 'the other completion finds the run recorded');
    assert.deepEqual(completed, ['order-1'], 'once');
    assert.equal((await run.view('u1')).runId, null, 'the run stays reset');
    assert.notEqual((await run.submit('u1', 'shipping', { name: 'Bob' })).runId, runId);
  });

  it('flow when a slow action\'s hold lapsed and nothing changed the run then the completion ends it, also after another completion took it again', async () => {
    const { clock, run, runId, release, done, completed } = await slowCompletion();
    clock.advance(COMPLETING_HOLD_MS);
    // A retry of the confirm takes the lapsed run again, with the same data: it joins the first's hold.
    let again!: () => void;
    const second = run.complete('u1', () => new Promise<string>((r) => { again = () => r('order-1'); }), { onCompleted: (ctx, result) => void completed.push(result) });
    await new Promise((r) => setImmediate(r));
    await assert.rejects(run.submit('u1', 'shipping', { name: 'Bob' }), { code: 'FLOW_COMPLETING' });
    release();
    assert.equal(await done, 'order-1');
    assert.equal((await run.view('u1')).runId, null, 'the run ended');
    again();
    assert.equal(await second, 'order-1');
    assert.deepEqual(completed, ['order-1'], 'onCompleted ran once');
    assert.notEqual((await run.submit('u1', 'shipping', { name: 'Bob' })).runId, runId);
  });

  it('flow when a long action renews its hold then the run stays held past COMPLETING_HOLD_MS; renewHold() is false once a change broke the lapsed hold', async () => {
    const { clock, run, release, done, renew } = await slowCompletion();
    clock.advance(COMPLETING_HOLD_MS - 1);
    assert.equal(await renew(), true);
    clock.advance(COMPLETING_HOLD_MS - 1);
    await assert.rejects(run.submit('u1', 'shipping', { name: 'Bob' }), { code: 'FLOW_COMPLETING' });
    assert.equal(await renew(), true);
    clock.advance(COMPLETING_HOLD_MS);
    await run.submit('u1', 'shipping', { name: 'Bob' });
    assert.equal(await renew(), false, 'the run changed after the hold lapsed');
    release();
    await assert.rejects(done, { code: 'FLOW_RUN_CHANGED' });
  });

  it('flow when a run reaches idleTimeoutMs while complete() runs its action then it is still held: a first step is refused FLOW_COMPLETING rather than starting a new run in its place, and the completion ends it', async () => {
    const clock = new ManualClock();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0, clock }), secrets: [SECRET_A], clock });
    const run = defineFlow({ name: 'checkout', idleTimeoutMs: 10_000, steps: [{ name: 'shipping', parse: parseName }, { name: 'review' }] }).using(tether.users);
    const { runId } = await run.submit('u1', 'shipping', { name: 'Ada' });
    clock.advance(9_999);
    let release!: () => void;
    const placing = new Promise<void>((r) => { release = r; });
    let started!: () => void;
    const inAction = new Promise<void>((r) => { started = r; });
    const completed: string[] = [];
    const done = run.complete('u1', async () => { started(); await placing; return 'order-1'; }, { onCompleted: (ctx, result) => void completed.push(result) });
    await inAction;
    clock.advance(1);
    await assert.rejects(run.submit('u1', 'shipping', { name: 'Bob' }), { code: 'FLOW_COMPLETING' });
    assert.equal((await run.view('u1')).runId, runId, 'still shown');
    release();
    assert.equal(await done, 'order-1');
    assert.deepEqual(completed, ['order-1'], 'the completion found its run and ended it');
    assert.equal((await run.view('u1')).runId, null);
  });

  it('flow when every step takes input then completes after the last one and views "complete"', async () => {
    const { tether } = setup();
    const run = defineFlow({ name: 'signup', steps: [{ name: 'email', parse: parseName }] }).using(tether.users);
    assert.equal((await run.submit('u1', 'email', { name: 'a@b' })).step, 'complete');
    assert.equal(await run.complete('u1', ({ data }) => (data.email as { name: string }).name), 'a@b');
  });

  it('flow when a step without input is posted then refuses; reset starts a new run', async () => {
    const { run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    await assert.rejects(run.submit('u1', 'review', {}), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    const before = (await run.view('u1')).runId;
    await run.reset('u1');
    assert.equal((await run.view('u1')).runId, null);
    assert.notEqual((await run.submit('u1', 'shipping', { name: 'Ada' })).runId, before);
  });

  it('flow when a step is parsed then parse gets a frozen copy of what the steps before it kept, and only those', async () => {
    const { tether } = setup();
    const seen: FlowEarlier[] = [];
    const shippingSeen: FlowEarlier[] = [];
    const flow = countryFlow(seen);
    const run = defineFlow({
      name: 'checkout',
      steps: [{ name: 'shipping', parse: (input, earlier) => (shippingSeen.push(earlier), parseCountry(input)) }, flow.steps[1]!, flow.steps[2]!],
    }).using(tether.users);
    await run.submit('u1', 'shipping', { country: 'US' });
    assert.deepEqual(shippingSeen, [{}], 'the first step has nothing before it');
    await assert.rejects(run.submit('u1', 'payment', { method: 'sepa' }), { code: 'VALIDATION_FAILED', message: /sepa is not offered in US/ });
    const v = await run.submit('u1', 'payment', { method: 'cod' });
    assert.deepEqual(v.data.payment, { method: 'cod', currency: 'USD' });
    assert.deepEqual(seen, [{ shipping: { country: 'US' } }, { shipping: { country: 'US' } }], 'parsed once per submit');
    const earlier = seen[1]!;
    assert.ok(Object.isFrozen(earlier) && Object.isFrozen(earlier.shipping));
    assert.throws(() => { (earlier.shipping).country = 'FR'; }, TypeError);
    // Back at the first step, the data the later steps kept is not "earlier" to it.
    await run.back('u1');
    await run.back('u1');
    await run.submit('u1', 'shipping', { country: 'FR' });
    assert.deepEqual(shippingSeen, [{}, {}]);
    assert.deepEqual((await run.submit('u1', 'payment', { method: 'sepa' })).data.payment, { method: 'sepa', currency: 'EUR' });
    assert.deepEqual(seen.at(-1), { shipping: { country: 'FR' } });
  });

  for (const when of ['before', 'during'] as const) {
    it(`flow when an earlier step is re-posted on another device ${when === 'before' ? 'before the write' : 'while the write runs (compare-and-set conflict)'} then the step is parsed again on the earlier data the write keeps`, async () => {
      const { tether } = setup();
      const seen: FlowEarlier[] = [];
      const flow = countryFlow(seen);
      const other = flow.using(tether.users);
      await other.submit('u1', 'shipping', { country: 'US' });
      const device = flow.using(racing(tether.users, when, () => other.submit('u1', 'shipping', { country: 'FR' })));
      // Valid in both countries: kept, with what the current shipping country gives.
      const v = await device.submit('u1', 'payment', { method: 'card' });
      assert.deepEqual(v.data, { shipping: { country: 'FR' }, payment: { method: 'card', currency: 'EUR' } });
      assert.equal(v.step, 'review');
      assert.deepEqual(seen.map((e) => (e.shipping as { country: string }).country), ['US', 'FR']);
      assert.deepEqual((await other.view('u1')).data.payment, { method: 'card', currency: 'EUR' }, 'what was stored, not only what was answered');

      // Valid only for the country parse saw first: refused, and the other device's step stands.
      await other.reset('u1');
      await other.submit('u1', 'shipping', { country: 'US' });
      const refused = flow.using(racing(tether.users, when, () => other.submit('u1', 'shipping', { country: 'FR' })));
      await assert.rejects(refused.submit('u1', 'payment', { method: 'cod' }), { code: 'VALIDATION_FAILED', message: /cod is not offered in FR/ });
      const after = await other.view('u1');
      assert.equal(after.step, 'payment');
      assert.deepEqual(after.data, { shipping: { country: 'FR' } });
    });
  }

  it('flow when a run is idle for idleTimeoutMs then it counts as absent: a fresh view, later steps out of order, nothing to complete, a new run on the first step', async () => {
    const { tether } = setup();
    const clock = new ManualClock();
    const run = defineFlow({ name: 'checkout', idleTimeoutMs: 1000, clock, steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] }).using(tether.users);
    const first = await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { card: '4242' });
    clock.advance(999);
    assert.equal((await run.view('u1')).step, 'review', 'still live a millisecond before the deadline (and a view does not start the idle time again)');
    clock.advance(1);
    assert.deepEqual(await run.view('u1'), { flow: 'checkout', step: 'shipping', index: 0, steps: ['shipping', 'payment', 'review'], data: {}, runId: null });
    await assert.rejects(run.complete('u1', () => 'order'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    await assert.rejects(run.submit('u1', 'payment', { card: '4242' }), { code: 'FLOW_STEP_OUT_OF_ORDER', message: /post "shipping" first/ });
    await assert.rejects(run.back('u1'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    const fresh = await run.submit('u1', 'shipping', { name: 'Grace' });
    assert.notEqual(fresh.runId, first.runId, 'a new run');
    assert.deepEqual(fresh.data, { shipping: { name: 'Grace' } }, 'the expired run\'s data is dropped');
    assert.equal(fresh.step, 'payment');
  });

  it('flow when steps are posted or taken back within idleTimeoutMs then each one starts the idle time again', async () => {
    const { tether } = setup();
    const clock = new ManualClock();
    const run = defineFlow({ name: 'checkout', idleTimeoutMs: 1000, clock, steps: [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }] }).using(tether.users);
    const { runId } = await run.submit('u1', 'shipping', { name: 'Ada' });
    clock.advance(900);
    await run.submit('u1', 'payment', { card: '4242' });
    clock.advance(900);
    await run.back('u1');
    clock.advance(900);
    await run.submit('u1', 'payment', { card: '4242' });
    clock.advance(900);
    assert.equal((await run.view('u1')).runId, runId);
    clock.advance(99);
    assert.equal(await run.complete('u1', (r) => r.runId), runId, 'within the idle time of the last submit');
  });

  it('flow when given no clock then follows the engine clock of tether.users; without idleTimeoutMs a run never expires', async () => {
    const clock = new ManualClock();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A], clock });
    const steps = [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseCard }, { name: 'review' }];
    const expiring = defineFlow({ name: 'checkout', idleTimeoutMs: 60_000, steps }).using(tether.users);
    const lasting = defineFlow({ name: 'wishlist', steps }).using(tether.users);
    await expiring.submit('u1', 'shipping', { name: 'Ada' });
    await lasting.submit('u1', 'shipping', { name: 'Ada' });
    clock.advance(60_000);
    assert.equal((await expiring.view('u1')).runId, null);
    clock.advance(365 * 24 * 3600_000);
    assert.equal((await lasting.view('u1')).step, 'payment');
  });

  it('defineFlow when idleTimeoutMs or clock is not valid, or an option is unknown, then throws OPTIONS_INVALID naming it', () => {
    const steps = [{ name: 'a', parse: parseName }];
    for (const idleTimeoutMs of [0, -1, 1.5, 2 ** 53, Number.NaN, Infinity, '1000', null]) {
      assert.throws(() => defineFlow({ name: 'f', steps, idleTimeoutMs: idleTimeoutMs as number }), { code: 'OPTIONS_INVALID', message: /defineFlow "f" options\.idleTimeoutMs must be a positive integer/ }, String(idleTimeoutMs));
    }
    assert.equal(defineFlow({ name: 'f', steps, idleTimeoutMs: 30 * 86_400_000 }).idleTimeoutMs, 30 * 86_400_000, 'longer than a timer can wait: none waits for it');
    assert.throws(() => defineFlow({ name: 'f', steps, clock: Date.now as never }), { code: 'OPTIONS_INVALID', message: /options\.clock must be an object with a now\(\) method/ });
    assert.throws(() => defineFlow({ name: 'f', steps, idleTimeout: 1000 } as never), { code: 'OPTIONS_INVALID', message: /options\.idleTimeout is not an option \(known: clock, idleTimeoutMs, name, steps\)/ });
  });

  it('defineFlow when given bad definitions then throws OPTIONS_INVALID naming the problem', () => {
    assert.throws(() => defineFlow({ name: '__proto__', steps: [{ name: 'a' }] }), { code: 'OPTIONS_INVALID' });
    assert.throws(() => defineFlow({ name: 'f', steps: [] }), { code: 'OPTIONS_INVALID', message: /non-empty/ });
    assert.throws(() => defineFlow({ name: 'f', steps: [{ name: 'a', parse: parseName }, { name: 'a', parse: parseName }] }), { message: /appears twice/ });
    assert.throws(() => defineFlow({ name: 'f', steps: [{ name: 'a' }, { name: 'b', parse: parseName }] }), { message: /only the last step/ });
    // Its run could never begin (a step without input cannot be posted), so it could never complete.
    assert.throws(() => defineFlow({ name: 'f', steps: [{ name: 'confirm' }] }), { code: 'OPTIONS_INVALID', message: /its only step takes no input/ });
    // Session data refuses these keys, so a session flow could not keep them.
    assert.throws(() => defineFlow({ name: 'constructor', steps: [{ name: 'a' }] }), { code: 'OPTIONS_INVALID', message: /not constructor or prototype/ });
    assert.throws(() => defineFlow({ name: 'f', steps: [{ name: 'prototype' }] }), { code: 'OPTIONS_INVALID', message: /not constructor or prototype/ });
  });
});
