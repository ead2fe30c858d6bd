/** Session flows (`sessionFlows`): progress kept in the request's session, for visitors without an account. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TetherError } from 'tether';
import type { Session, SessionData, Tether } from 'tether';
import { defineFlow, sessionFlows } from 'tether/flow';
import type { FlowEarlier, FlowView } from 'tether/flow';
import { rig, trip } from '../support.js';

/** A student plan needs an .edu address: the plan step depends on the email step. */
const parseEmail = (input: unknown): { email: string } => {
  const email = (input as { email?: unknown } | null)?.email;
  if (typeof email !== 'string' || !email.includes('@')) throw new TetherError('VALIDATION_FAILED', 'email is required', 400);
  return { email };
};
function parsePlan(input: unknown, earlier: FlowEarlier): { plan: string; domain: string } {
  const plan = String((input as { plan: string }).plan);
  const domain = (earlier.email as { email: string }).email.split('@')[1]!;
  if (plan === 'student' && !domain.endsWith('.edu')) throw new TetherError('VALIDATION_FAILED', 'the student plan needs an .edu address', 400);
  return { plan, domain };
}
const steps = [{ name: 'email', parse: parseEmail }, { name: 'plan', parse: parsePlan }, { name: 'confirm' }];
const signup = defineFlow({ name: 'signup', steps });
const flows = signup.using(sessionFlows);

/** Type checks: a typed session is a key, a user ID is not, and a user-context runner takes no session. */
function typedUse(session: Session<{ cart: string[] }>, tether: Tether): void {
  void flows.view(session);
  // @ts-expect-error a session flow is keyed by the Session, not a user ID
  void flows.view('u1');
  // @ts-expect-error a user-context flow is keyed by the user ID
  void signup.using(tether.users).view(session);
}
void typedUse;

/**
 * A session whose run is at its last step (an .edu email, the student plan), then opened by one request
 * in each of two processes sharing its store, before either commits: `mine` in `one`, `theirs` in `two`.
 */
type Rig = ReturnType<typeof rig<SessionData>>;
type Opened = Awaited<ReturnType<Rig['tether']['open']>>;
async function atConfirmInTwoProcesses(): Promise<{ one: Rig; two: Rig; cookie: string; mine: Opened; theirs: Opened }> {
  const one = rig<SessionData>();
  const two = rig<SessionData>({}, one);
  const { cookie } = await trip(one.tether, undefined, async (s) => {
    await flows.submit(s, 'email', { email: 'ada@uni.edu' });
    await flows.submit(s, 'plan', { plan: 'student' });
  });
  const header = { cookie: cookie! };
  const mine = await one.tether.open({ method: 'POST', header: (n) => header[n as 'cookie'] });
  const theirs = await two.tether.open({ method: 'POST', header: (n) => header[n as 'cookie'] });
  return { one, two, cookie: cookie!, mine, theirs };
}

describe('sessionFlows', () => {
  it('sessionFlows when a visitor views and posts steps then progress is stored in the session, and a view or a refused step stores none', async () => {
    const { tether, store, clock } = rig();
    // A session has no clock of its own to give: the engine's is passed to the flow.
    const flows = defineFlow({ name: 'signup', steps, clock }).using(sessionFlows);
    const viewed = await trip(tether, undefined, async (s) => {
      assert.equal((await flows.view(s)).step, 'email');
    }, 'GET');
    assert.deepEqual(viewed.setCookies, [], 'viewing a flow creates no session');
    await assert.rejects(trip(tether, undefined, (s) => flows.submit(s, 'plan', { plan: 'pro' })), { code: 'FLOW_STEP_OUT_OF_ORDER', status: 409 });
    await assert.rejects(trip(tether, undefined, (s) => flows.submit(s, 'email', {})), { code: 'VALIDATION_FAILED' });
    assert.equal(store.calls.set, 0, 'a refused step stores no session');

    let first!: FlowView;
    const a = await trip(tether, undefined, async (s) => {
      first = await flows.submit(s, 'email', { email: 'ada@uni.edu' });
    });
    assert.ok(a.cookie, 'the first step stores the session');
    assert.equal(first.step, 'plan');
    const b = await trip(tether, a.cookie, async (s) => {
      const v = await flows.submit(s, 'plan', { plan: 'student' });
      assert.deepEqual(v.data, { email: { email: 'ada@uni.edu' }, plan: { plan: 'student', domain: 'uni.edu' } });
      assert.equal(v.runId, first.runId);
      assert.deepEqual(s.snapshot(), { flows: { signup: { runId: first.runId, step: 2, done: ['email', 'plan'], data: v.data, updatedAt: clock.now() } } });
    });
    let accounts = 0;
    await trip(tether, b.cookie, async (s) => {
      assert.equal(await flows.complete(s, ({ runId }) => (accounts++, runId)), first.runId);
      assert.deepEqual(s.data, { flows: { 'signup:completed': [first.runId] } }, 'the run ended, and is listed as completed');
    });
    await trip(tether, b.cookie, async (s) => {
      assert.equal((await flows.view(s)).runId, null, 'completed once');
      await assert.rejects(flows.complete(s, () => accounts++), { code: 'FLOW_STEP_OUT_OF_ORDER' });
    });
    assert.equal(accounts, 1);
  });

  it('sessionFlows when a deploy changes the steps then a visitor\'s run resumes at the first step it has not posted, and the session stores it so', async () => {
    const { tether } = rig();
    const a = await trip(tether, undefined, async (s) => {
      await flows.submit(s, 'email', { email: 'ada@uni.edu' });
      await flows.submit(s, 'plan', { plan: 'student' });
    });
    const terms = { name: 'terms', parse: (i: unknown) => i };
    const added = defineFlow({ name: 'signup', steps: [steps[0]!, terms, steps[1]!, steps[2]!] }).using(sessionFlows);
    const b = await trip(tether, a.cookie, async (s) => {
      assert.equal((await added.view(s)).step, 'terms');
      await assert.rejects(added.complete(s, () => 'account'), { code: 'FLOW_STEP_OUT_OF_ORDER' });
      assert.equal((await added.submit(s, 'terms', { accepted: true })).step, 'plan');
    });
    const removed = defineFlow({ name: 'signup', steps: [steps[0]!, steps[2]!] }).using(sessionFlows);
    const c = await trip(tether, b.cookie, async (s) => {
      const v = await removed.view(s);
      assert.deepEqual([v.step, v.data], ['confirm', { email: { email: 'ada@uni.edu' } }]);
      // A write under the new steps stores the run as they read it: the removed steps' data goes.
      assert.equal((await removed.submit(s, 'email', { email: 'ada@mit.edu' })).step, 'confirm');
    });
    await trip(tether, c.cookie, (s) => {
      const stored = (s.snapshot() as { flows: { signup: { step: number; done: string[]; data: object } } }).flows.signup;
      assert.deepEqual([stored.step, stored.done, stored.data], [1, ['email'], { email: { email: 'ada@mit.edu' } }]);
    }, 'GET');
  });

  for (const plan of ['pro', 'student'] as const) {
    it(`sessionFlows when another process re-posts the first step of the same session before this request commits then the commit replays the later step on it, ${plan === 'pro' ? 'parsed again' : 'and fails when it no longer parses'}`, async () => {
      const one = rig();
      const two = rig({}, one);
      const { cookie } = await trip(one.tether, undefined, (s) => flows.submit(s, 'email', { email: 'ada@uni.edu' }));
      // Both processes load the session before either writes: the per-session gate is per process.
      const header = { cookie: cookie! };
      const mine = await one.tether.open({ method: 'POST', header: (n) => header[n as 'cookie'] });
      const theirs = await two.tether.open({ method: 'POST', header: (n) => header[n as 'cookie'] });
      const answered = await flows.submit(mine, 'plan', { plan });
      assert.equal((answered.data.plan as { domain: string }).domain, 'uni.edu', 'checked against what this request loaded');
      await flows.submit(theirs, 'email', { email: 'ada@example.com' });
      await two.tether.commit(theirs);
      if (plan === 'student') {
        await assert.rejects(one.tether.commit(mine), { code: 'VALIDATION_FAILED', message: /needs an \.edu address/ });
      } else {
        await one.tether.commit(mine);
      }
      assert.equal(one.tether.stats().replays, 1, 'replayed, not refused with SESSION_CONFLICT');
      // A writer of this process, so it waits for the gate the failed commit, too, must have given back.
      await trip(one.tether, cookie, async (s) => {
        const v = await flows.view(s);
        if (plan === 'student') {
          assert.equal(v.step, 'plan', 'the other process\'s step stands, the refused one is not stored');
          assert.deepEqual(v.data, { email: { email: 'ada@example.com' } });
        } else {
          assert.equal(v.step, 'confirm');
          assert.deepEqual(v.data, { email: { email: 'ada@example.com' }, plan: { plan: 'pro', domain: 'example.com' } });
        }
      });
    });
  }

  for (const change of ['plan', 'email'] as const) {
    it(`sessionFlows when another process changes the run (${change === 'plan' ? 'its last step posted again' : 'its first step posted again, the run sent back'}) while this request completes it then the commit keeps that change under a new runId and records the completion, instead of ending the run with it`, async () => {
      const { one, two, cookie, mine, theirs } = await atConfirmInTwoProcesses();
      const { runId } = await flows.view(mine);
      const accounts: unknown[] = [];
      const account = await flows.complete(mine, ({ data }) => {
        accounts.push(data);
        return 'acct-1';
      }, { onCompleted: (ctx, result) => { ctx.account = result; } });
      assert.equal(account, 'acct-1');
      if (change === 'plan') await flows.submit(theirs, 'plan', { plan: 'pro' });
      else await flows.submit(theirs, 'email', { email: 'ada@example.com' });
      await two.tether.commit(theirs);
      await one.tether.commit(mine);
      await trip(one.tether, cookie, async (s) => {
        const v = await flows.view(s);
        assert.notEqual(v.runId, null, 'the run was not ended with the change');
        assert.notEqual(v.runId, runId, 'it goes on under a new runId');
        if (change === 'plan') assert.deepEqual(v.data.plan, { plan: 'pro', domain: 'uni.edu' }, 'the change is kept');
        else assert.deepEqual([v.step, v.data.email], ['plan', { email: 'ada@example.com' }], 'the change is kept');
        assert.equal(s.data.account, 'acct-1', 'what the action did is recorded');
      });
      assert.equal(accounts.length, 1);
    });
  }

  for (const named of [true, false]) {
    it(`sessionFlows when two processes complete the same run of one session (${named ? 'naming it' : 'naming no run'}) then the commit stored first is the one that completed it, and the other's fails as a completion after the run ended does on tether.users (${named ? 'FLOW_RUN_NOT_CURRENT' : 'FLOW_STEP_OUT_OF_ORDER'}), onCompleted recorded once`, async () => {
      const { one, two, cookie, mine, theirs } = await atConfirmInTwoProcesses();
      const three = rig({}, one);
      const unrelated = await three.tether.open({ method: 'POST', header: (n) => (n === 'cookie' ? cookie : undefined) });
      const { runId } = await flows.view(mine);
      // An idempotent action: the second to run it finds the account the first created.
      const accounts = new Map<string, string>();
      const action = ({ runId: id }: { runId: string }): string => {
        if (!accounts.has(id)) accounts.set(id, `acct-${accounts.size + 1}`);
        return accounts.get(id)!;
      };
      const options = { runId: named ? runId! : undefined, onCompleted: (ctx: Record<string, unknown>) => { ctx.completions = Number(ctx.completions ?? 0) + 1; } };
      assert.equal(await flows.complete(mine, action, options), 'acct-1');
      assert.equal(await flows.complete(theirs, action, options), 'acct-1');
      // Another write of the session before either commit: the confirming one's commit replays on it too.
      unrelated.set('seen', true);
      await three.tether.commit(unrelated);
      await one.tether.commit(mine);
      await assert.rejects(two.tether.commit(theirs), { code: named ? 'FLOW_RUN_NOT_CURRENT' : 'FLOW_STEP_OUT_OF_ORDER', status: 409 });
      await trip(one.tether, cookie, async (s) => {
        assert.equal((await flows.view(s)).runId, null, 'the run ended');
        assert.equal(s.data.completions, 1, 'recorded once, by the request that completed it');
        assert.equal(s.data.seen, true);
      }, 'GET');
    });
  }

  it('sessionFlows when another process resets the run while this request completes it then the commit still records what the action did (onCompleted), and the run stays reset', async () => {
    const { one, two, cookie, mine, theirs } = await atConfirmInTwoProcesses();
    assert.equal(await flows.complete(mine, () => 'acct-1', { onCompleted: (ctx, result) => { ctx.account = result; } }), 'acct-1');
    await flows.reset(theirs);
    await two.tether.commit(theirs);
    await one.tether.commit(mine);
    await trip(one.tether, cookie, async (s) => {
      assert.equal((await flows.view(s)).runId, null, 'the run stays reset');
      assert.equal(s.data.account, 'acct-1', 'what the action did is recorded');
    }, 'GET');
  });
});
