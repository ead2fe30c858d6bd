/** Flow events on the tether:flow:* channels: one per stored change, in order, none for a refused step or a lost completion. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { createTether, MemoryStore, TetherError } from 'tether';
import { ManualClock } from 'tether/testing';
import { defineFlow, sessionFlows } from 'tether/flow';
import { FLOW_CHANNEL_NAMES } from 'tether/observability';
import type { FlowMessage } from 'tether/observability';
import type { Session, TetherOptions } from 'tether';
import { SECRET_A, rig, trip, view } from '../support.js';

function parseName(input: unknown): { name: string } {
  const name = (input as { name?: unknown } | null)?.name;
  if (typeof name !== 'string' || name.length === 0) throw new TetherError('VALIDATION_FAILED', 'name is required', 400);
  return { name };
}

const steps = [{ name: 'shipping', parse: parseName }, { name: 'payment', parse: parseName }, { name: 'review' }];

/** Collects the messages of every flow channel until the returned `stop()`. */
function listen(): { seen: FlowMessage[]; stop: () => void } {
  const seen: FlowMessage[] = [];
  const onMessage = (msg: unknown) => seen.push(msg as FlowMessage);
  for (const name of Object.values(FLOW_CHANNEL_NAMES)) diagnostics.subscribe(name, onMessage);
  return { seen, stop: () => { for (const name of Object.values(FLOW_CHANNEL_NAMES)) diagnostics.unsubscribe(name, onMessage); } };
}

function setup(clock = new ManualClock()) {
  const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A], clock });
  return { tether, clock, run: defineFlow({ name: 'checkout', idleTimeoutMs: 1000, steps }).using(tether.users) };
}

describe('flow events', () => {
  it('flow events when a run goes step, step, back, step, complete then they come in that order, with its runId and the user', async () => {
    const { tether, run } = setup();
    const { seen, stop } = listen();
    try {
      const { runId } = await run.submit('u1', 'shipping', { name: 'Ada' });
      await run.submit('u1', 'payment', { name: 'card' });
      await run.back('u1');
      await run.submit('u1', 'payment', { name: 'sepa' });
      await run.complete('u1', () => 'order');
      assert.deepEqual(seen.map((m) => [m.event, m.step, m.index]), [
        ['step', 'shipping', 0],
        ['step', 'payment', 1],
        ['back', 'payment', 1],
        ['step', 'payment', 1],
        ['completed', undefined, undefined],
      ]);
      for (const m of seen) assert.deepEqual({ flow: m.flow, runId: m.runId, userId: m.userId, at: typeof m.at }, { flow: 'checkout', runId: runId!, userId: 'u1', at: 'number' });
    } finally {
      stop();
      await tether.close();
    }
  });

  it('flow events when a step is refused (bad input, out of order) then none is published', async () => {
    const { tether, run } = setup();
    const { seen, stop } = listen();
    try {
      await assert.rejects(run.submit('u1', 'shipping', {}), { code: 'VALIDATION_FAILED' });
      await assert.rejects(run.submit('u1', 'payment', { name: 'card' }), { code: 'FLOW_STEP_OUT_OF_ORDER' });
      await assert.rejects(run.back('u1'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
      assert.deepEqual(seen, []);
    } finally {
      stop();
      await tether.close();
    }
  });

  it('flow events when two completions of one run race then one completed is published, by the one that ended it', async () => {
    const { tether, run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { name: 'card' });
    const { seen, stop } = listen();
    try {
      await Promise.all([run.complete('u1', () => 'a'), run.complete('u1', () => 'b')]);
      assert.deepEqual(seen.map((m) => m.event), ['completed']);
    } finally {
      stop();
      await tether.close();
    }
  });

  it('flow events when calls find a run past idleTimeoutMs then it reports expired once per run, lazily, and reset of a live run reports reset', async () => {
    const { tether, clock, run } = setup();
    const { runId } = await run.submit('u1', 'shipping', { name: 'Ada' });
    const { seen, stop } = listen();
    try {
      clock.advance(999);
      await run.view('u1');
      assert.equal(seen.length, 0, 'nothing before the deadline, and nothing without a call');
      clock.advance(1);
      await run.view('u1');
      // Views, a step refused as out of order and the first step of a new run all find it expired: one report.
      await run.view('u1');
      await assert.rejects(run.submit('u1', 'payment', { name: 'card' }), { code: 'FLOW_STEP_OUT_OF_ORDER' });
      const fresh = await run.submit('u1', 'shipping', { name: 'Grace' });
      assert.deepEqual(seen.map((m) => [m.event, m.runId]), [['expired', runId], ['step', fresh.runId]]);
      seen.length = 0;
      await run.reset('u1');
      assert.deepEqual(seen.map((m) => [m.event, m.runId]), [['reset', fresh.runId]]);
      await run.reset('u1');
      assert.equal(seen.length, 1, 'a reset that finds no run reports nothing');
    } finally {
      stop();
      await tether.close();
    }
  });

  it('flow events when more runs expire than a process remembers then each is reported once while remembered, and the oldest again once forgotten', async () => {
    const { tether, clock, run } = setup();
    const users = Array.from({ length: 1025 }, (_, i) => `u${i}`);
    for (const u of users) await run.submit(u, 'shipping', { name: 'Ada' });
    clock.advance(1000);
    const { seen, stop } = listen();
    try {
      for (const u of users) await run.view(u);
      assert.equal(seen.length, 1025, 'each run once');
      await run.view('u1024');
      await run.view('u1');
      assert.equal(seen.length, 1025, 'the runs remembered are not reported again');
      await run.view('u0');
      assert.deepEqual(seen.slice(1025).map((m) => m.userId), ['u0'], 'the oldest, forgotten, is reported again');
    } finally {
      stop();
      await tether.close();
    }
  });

  it('flow events when a flow keeps its progress in the session then messages carry no user and no session', async () => {
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A] });
    const signup = defineFlow({ name: 'signup', steps: [{ name: 'email', parse: parseName }] }).using(sessionFlows);
    const { seen, stop } = listen();
    try {
      const session = await tether.open({ method: 'POST', header: () => undefined });
      const { runId } = await signup.submit(session, 'email', { name: 'a@b.c' });
      await tether.commit(session);
      assert.deepEqual(seen, [{ event: 'step', flow: 'signup', runId, step: 'email', index: 0, at: seen[0]!.at }]);
    } finally {
      stop();
      await tether.close();
    }
  });

  it('flow events when a step\'s write meets a compare-and-set conflict and runs again then the step is published once', async () => {
    const { tether, run } = setup();
    await run.submit('u1', 'shipping', { name: 'Ada' });
    let meanwhile: (() => Promise<unknown>) | undefined = () => run.submit('u1', 'shipping', { name: 'Grace' });
    let runs = 0;
    // Another device posts the first step again after this update's first read: its write conflicts.
    const racing = defineFlow({ name: 'checkout', idleTimeoutMs: 1000, steps }).using({
      get: (userId: string) => tether.users.get(userId),
      update: (userId: string, fn: (ctx: Record<string, unknown>) => void | Promise<void>) => tether.users.update(userId, async (ctx) => {
        runs++;
        const other = meanwhile;
        meanwhile = undefined;
        await other?.();
        return fn(ctx);
      }),
      clock: tether.users.clock,
    });
    const { seen, stop } = listen();
    try {
      await racing.submit('u1', 'payment', { name: 'card' });
      assert.ok(runs >= 2, 'the update ran again');
      assert.deepEqual(seen.map((m) => [m.event, m.step]), [['step', 'shipping'], ['step', 'payment']]);
    } finally {
      stop();
      await tether.close();
    }
  });

  it('flow events when nobody subscribes then a run works the same', async () => {
    const { tether, run } = setup();
    for (const name of Object.values(FLOW_CHANNEL_NAMES)) assert.equal(diagnostics.hasSubscribers(name), false);
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { name: 'card' });
    await run.back('u1');
    await run.reset('u1');
    await run.submit('u1', 'shipping', { name: 'Ada' });
    await run.submit('u1', 'payment', { name: 'card' });
    assert.equal(await run.complete('u1', () => 'order'), 'order');
    await tether.close();
  });
});

describe('session flow events and the commit', () => {
  const signup = defineFlow({ name: 'signup', idleTimeoutMs: 1000, steps }).using(sessionFlows);
  const post = (cookie?: string) => view('POST', cookie === undefined ? {} : { cookie });

  /** The messages of tether:flow:step alone, as a funnel that counts steps subscribes. */
  function listenSteps(): { seen: FlowMessage[]; stop: () => void } {
    const seen: FlowMessage[] = [];
    const onMessage = (msg: unknown) => seen.push(msg as FlowMessage);
    diagnostics.subscribe('tether:flow:step', onMessage);
    return { seen, stop: () => diagnostics.unsubscribe('tether:flow:step', onMessage) };
  }

  /** Runs `fn` on a fresh engine with tether:flow:step listened to; unsubscribes and closes afterwards. */
  async function withSteps(options: TetherOptions, fn: (r: ReturnType<typeof rig>, seen: FlowMessage[]) => Promise<void>): Promise<void> {
    const r = rig(options);
    const { seen, stop } = listenSteps();
    try {
      await fn(r, seen);
    } finally {
      stop();
      await r.tether.close();
    }
  }

  it('session flow events when a step is posted then tether:flow:step is published after the request\'s commit has stored it, not when the call returns', async () => withSteps({}, async (r, seen) => {
    const session = await r.tether.open(post());
    const { runId } = await signup.submit(session, 'shipping', { name: 'Ada' });
    assert.equal(seen.length, 0, 'not before the commit');
    let stored: unknown;
    r.store.beforeSet = () => { stored = seen.length; };
    await r.tether.commit(session);
    assert.equal(stored, 0, 'not while the store writes');
    assert.deepEqual(seen.map((m) => [m.event, m.step, m.runId]), [['step', 'shipping', runId]]);
  }));

  for (const [name, fault] of [['rejects', 'reject'], ['does not answer', 'hang']] as const) {
    it(`session flow events when the commit fails because the store ${name} then tether:flow:step is not published`, async () => withSteps({ storeTimeoutMs: 50 }, async (r, seen) => {
      const session = await r.tether.open(post());
      await signup.submit(session, 'shipping', { name: 'Ada' });
      r.store.fail('set', fault);
      await assert.rejects(r.tether.commit(session), { code: 'STORE_UNAVAILABLE' });
      r.tether.abandon(session);
      assert.equal(seen.length, 0);
      // The step was not kept: posting it again once the store is back is published, once.
      r.store.heal();
      await trip(r.tether, undefined, (s) => signup.submit(s, 'shipping', { name: 'Ada' }));
      assert.deepEqual(seen.map((m) => m.event), ['step']);
    }));
  }

  it('session flow events when the handler does not await the step and the commit begins first then the call still resolves, its step stored and published', async () => withSteps({}, async (r, seen) => {
    const session = await r.tether.open(post());
    // Not awaited: the commit waits for the step's update, then begins before the call resumes.
    const call = signup.submit(session, 'shipping', { name: 'Ada' });
    const cookies = await r.tether.commit(session);
    const { runId } = await call;
    assert.deepEqual(seen.map((m) => [m.event, m.step, m.runId]), [['step', 'shipping', runId]]);
    const again = await r.tether.open(view('GET', { cookie: cookies[0]!.split(';')[0]! }));
    assert.equal((await signup.view(again)).step, 'payment', 'the step was stored');
  }));

  it('session flow events when the request is abandoned (the handler failed after the step) then none is published', async () => withSteps({}, async (r, seen) => {
    await assert.rejects(trip(r.tether, undefined, async (s) => {
      await signup.submit(s, 'shipping', { name: 'Ada' });
      throw new Error('the handler failed');
    }), /the handler failed/);
    assert.deepEqual(seen, []);
  }));

  it('session flow events when a run goes step, back, reset, step, complete then each event comes after its request\'s commit, and expired when the call finds it', async () => {
    const r = rig();
    const flow = defineFlow({ name: 'signup', idleTimeoutMs: 1000, steps, clock: r.clock }).using(sessionFlows);
    const { seen, stop } = listen();
    try {
      /** One request: `fn`'s events are not out before its commit. */
      let cookie: string | undefined;
      const request = async (fn: (s: Session<object>) => Promise<unknown>): Promise<void> => {
        const before = seen.length;
        cookie = (await trip(r.tether, cookie, async (s) => {
          await fn(s);
          assert.equal(seen.length, before, 'nothing before the commit');
        })).cookie;
      };
      await request((s) => flow.submit(s, 'shipping', { name: 'Ada' }));
      await request((s) => flow.submit(s, 'payment', { name: 'card' }));
      await request((s) => flow.back(s));
      await request((s) => flow.reset(s));
      await request((s) => flow.submit(s, 'shipping', { name: 'Ada' }));
      await request((s) => flow.submit(s, 'payment', { name: 'card' }));
      await request((s) => flow.complete(s, () => 'account'));
      assert.deepEqual(seen.map((m) => [m.event, m.step]), [
        ['step', 'shipping'], ['step', 'payment'], ['back', 'payment'], ['reset', undefined],
        ['step', 'shipping'], ['step', 'payment'], ['completed', undefined],
      ]);
      // An expired run is reported by the read that finds it, whatever becomes of the request.
      await request((s) => flow.submit(s, 'shipping', { name: 'Ada' }));
      r.clock.advance(1000);
      seen.length = 0;
      const session = await r.tether.open(post(cookie));
      await flow.view(session);
      assert.deepEqual(seen.map((m) => m.event), ['expired']);
      r.tether.abandon(session);
    } finally {
      stop();
      await r.tether.close();
    }
  });

  it('flow events when the context store has afterWrite then each event waits for the function it was given, and expired does not', async () => {
    const { tether, clock } = setup();
    const pending: Array<() => void> = [];
    const keys: string[] = [];
    const deferred = defineFlow({ name: 'checkout', idleTimeoutMs: 1000, steps }).using({
      get: (userId: string) => tether.users.get(userId),
      update: (userId: string, fn: (ctx: Record<string, unknown>) => void | Promise<void>) => tether.users.update(userId, fn),
      afterWrite: (userId: string, fn: () => void) => { keys.push(userId); pending.push(fn); },
      clock: tether.users.clock,
    });
    const { seen, stop } = listen();
    try {
      await deferred.submit('u1', 'shipping', { name: 'Ada' });
      await deferred.back('u1');
      await deferred.reset('u1');
      assert.equal(seen.length, 0);
      assert.deepEqual(keys, ['u1', 'u1', 'u1']);
      for (const fn of pending.splice(0)) fn();
      assert.deepEqual(seen.map((m) => m.event), ['step', 'back', 'reset']);
      await deferred.submit('u1', 'shipping', { name: 'Ada' });
      clock.advance(1000);
      await deferred.view('u1');
      assert.deepEqual(seen.map((m) => m.event), ['step', 'back', 'reset', 'expired'], 'expired at once, the step still waiting');
    } finally {
      stop();
      await tether.close();
    }
  });

  it('session flow events when the commit replays the step on another process\'s write then it is published once, after the final write', async () => {
    const one = rig();
    const two = rig({}, one);
    const { cookie } = await trip(one.tether, undefined, (s) => signup.submit(s, 'shipping', { name: 'Ada' }));
    const { seen, stop } = listenSteps();
    try {
      const mine = await one.tether.open(post(cookie));
      const theirs = await two.tether.open(post(cookie));
      await signup.submit(mine, 'payment', { name: 'card' });
      await signup.submit(theirs, 'shipping', { name: 'Grace' });
      await two.tether.commit(theirs);
      assert.deepEqual(seen.map((m) => m.step), ['shipping']);
      await one.tether.commit(mine);
      assert.equal(one.tether.stats().replays, 1, 'replayed');
      assert.deepEqual(seen.map((m) => m.step), ['shipping', 'payment']);
    } finally {
      stop();
      await one.tether.close();
    }
  });
});
