/** Flow events on the tether:flow:* channels: one per stored change, in order, none for a refused step or a lost completion. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { createTether, MemoryStore, TetherError } from 'tether';
import { ManualClock } from 'tether/testing';
import { defineFlow, sessionFlows } from 'tether/flow';
import { FLOW_CHANNEL_NAMES } from 'tether/observability';
import type { FlowMessage } from 'tether/observability';

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
  const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: ['x'.repeat(32)], clock });
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

  it('flow events when a call finds its run past idleTimeoutMs then it reports expired once, lazily, and reset of a live run reports reset', async () => {
    const { tether, clock, run } = setup();
    const { runId } = await run.submit('u1', 'shipping', { name: 'Ada' });
    const { seen, stop } = listen();
    try {
      clock.advance(999);
      await run.view('u1');
      assert.equal(seen.length, 0, 'nothing before the deadline, and nothing without a call');
      clock.advance(1);
      await run.view('u1');
      // Refused as out of order, having noticed the run expired: reported, as each call that notices is.
      await assert.rejects(run.submit('u1', 'payment', { name: 'card' }), { code: 'FLOW_STEP_OUT_OF_ORDER' });
      const fresh = await run.submit('u1', 'shipping', { name: 'Grace' });
      assert.deepEqual(seen.map((m) => [m.event, m.runId]), [['expired', runId], ['expired', runId], ['expired', runId], ['step', fresh.runId]]);
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

  it('flow events when a flow keeps its progress in the session then messages carry no user and no session', async () => {
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: ['x'.repeat(32)] });
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
