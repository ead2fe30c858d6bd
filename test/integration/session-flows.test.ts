/**
 * A sign-up wizard for visitors without an account (`sessionFlows`), end to end: tether/node over a
 * plain node:http server, sessions in SQLite, a cookie-keeping client. Steps in order, out of order
 * refused with 409, progress kept across requests and a server restart, concurrent steps of one
 * session both kept, completion once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTether, TetherError } from 'tether';
import type { Tether } from 'tether';
import { withSessions } from 'tether/node';
import { SqliteStore } from 'tether/sqlite';
import { defineFlow, sessionFlows } from 'tether/flow';
import type { FlowEarlier, FlowView } from 'tether/flow';
import { listen, CookieClient } from '../helpers/cookie-client.js';
import type { Listening, Reply } from '../helpers/cookie-client.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import { readJson } from '../helpers/body.js';

const SECRET = 'session-flows-test-secret-0123456789abcdef';

function parseEmail(input: unknown): { email: string } {
  const email = (input as { email?: unknown } | null)?.email;
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) throw new TetherError('VALIDATION_FAILED', 'email must be an address', 400);
  return { email };
}

/** The student plan needs an .edu address: checked against the email step. */
function parsePlan(input: unknown, earlier: FlowEarlier): { plan: string; domain: string } {
  const plan = (input as { plan?: unknown } | null)?.plan;
  if (plan !== 'pro' && plan !== 'student') throw new TetherError('VALIDATION_FAILED', 'plan must be pro or student', 400);
  const domain = (earlier.email as { email: string }).email.split('@')[1]!;
  if (plan === 'student' && !domain.endsWith('.edu')) throw new TetherError('VALIDATION_FAILED', 'the student plan needs an .edu address', 400);
  return { plan, domain };
}

const signup = defineFlow({ name: 'signup', steps: [{ name: 'email', parse: parseEmail }, { name: 'plan', parse: parsePlan }, { name: 'confirm' }] }).using(sessionFlows);

/** GET /signup, POST /signup/<step>, /signup/back, /signup/complete; accounts are created once per run. */
function signupApp(tether: Tether, accounts: Map<string, Record<string, unknown>>) {
  return withSessions(tether, async (req, res, session) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    let out: FlowView | { accountId: string };
    let status = 200;
    if (req.method === 'GET' && path === '/signup') out = await signup.view(session);
    else if (req.method === 'POST' && path === '/signup/back') out = await signup.back(session);
    else if (req.method === 'POST' && path === '/signup/complete') {
      const accountId = await signup.complete(session, ({ runId, data }) => {
        // Idempotent per run: a retried completion finds its account.
        if (!accounts.has(runId)) accounts.set(runId, data);
        return runId;
      });
      out = { accountId };
      status = 201;
    } else if (req.method === 'POST' && path.startsWith('/signup/')) out = await signup.submit(session, path.slice('/signup/'.length), await readJson(req));
    else {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(out));
  }, { csrf: false, onError: () => {} });
}

interface Server {
  app: Listening;
  close(): Promise<void>;
}

async function start(path: string, accounts: Map<string, Record<string, unknown>>): Promise<Server> {
  const tether = createTether({ store: new SqliteStore({ path, sweepIntervalMs: 0 }), secrets: [SECRET] });
  const handler = signupApp(tether, accounts);
  const app = await listen((req, res) => void handler(req, res));
  return {
    app,
    async close() {
      await app.close();
      await tether.close();
    },
  };
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.body);
  assert.equal(r.json<{ error: { code: string } }>().error.code, code);
}

describe('session flows over HTTP (node:http, SQLite)', () => {
  it('session flow when a visitor signs up then steps go in order, survive requests and a restart, and complete once', async (t) => {
    const file = await tempSqliteFile();
    t.after(() => file.remove());
    const accounts = new Map<string, Record<string, unknown>>();
    let server = await start(file.path, accounts);
    t.after(() => server.close());
    let client = new CookieClient(server.app.url);

    const fresh = await client.request('/signup');
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.json(), { flow: 'signup', step: 'email', index: 0, steps: ['email', 'plan', 'confirm'], data: {}, runId: null });
    assert.deepEqual(fresh.setCookies, [], 'viewing starts no session');
    const early = await client.request('/signup/plan', { json: { plan: 'pro' } });
    assertError(early, 409, 'FLOW_STEP_OUT_OF_ORDER');
    assert.deepEqual(early.setCookies, [], 'a refused step starts no session');
    assertError(await client.request('/signup/nope', { json: {} }), 404, 'FLOW_STEP_UNKNOWN');
    assertError(await client.request('/signup/email', { json: { email: 'nope' } }), 400, 'VALIDATION_FAILED');

    const first = await client.request('/signup/email', { json: { email: 'ada@uni.edu' } });
    assert.equal(first.status, 200);
    assert.equal(first.json<FlowView>().step, 'plan');
    assert.equal(first.setCookies.length, 1, 'the first step stores the session');
    const runId = first.json<FlowView>().runId!;
    assertError(await client.request('/signup/complete', { method: 'POST' }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assert.equal((await client.request('/signup')).json<FlowView>().step, 'plan', 'the next request resumes at the plan');

    // A restart: a new engine on the same database file.
    await server.close();
    server = await start(file.path, accounts);
    client = client.clone(server.app.url);
    const resumed = (await client.request('/signup')).json<FlowView>();
    assert.equal(resumed.step, 'plan');
    assert.equal(resumed.runId, runId);
    assert.deepEqual(resumed.data, { email: { email: 'ada@uni.edu' } });

    const plan = await client.request('/signup/plan', { json: { plan: 'student' } });
    assert.deepEqual(plan.json<FlowView>().data.plan, { plan: 'student', domain: 'uni.edu' });
    assert.equal(plan.json<FlowView>().step, 'confirm');
    assert.equal((await client.request('/signup/back', { method: 'POST' })).json<FlowView>().step, 'plan');
    assertError(await client.request('/signup/complete', { method: 'POST' }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    await client.request('/signup/email', { json: { email: 'ada@example.com' } });
    assertError(await client.request('/signup/plan', { json: { plan: 'student' } }), 400, 'VALIDATION_FAILED');
    assert.equal((await client.request('/signup/plan', { json: { plan: 'pro' } })).json<FlowView>().step, 'confirm');

    const done = await client.request('/signup/complete', { method: 'POST' });
    assert.equal(done.status, 201);
    assert.deepEqual(done.json(), { accountId: runId });
    assert.deepEqual([...accounts.values()], [{ email: { email: 'ada@example.com' }, plan: { plan: 'pro', domain: 'example.com' } }]);
    assertError(await client.request('/signup/complete', { method: 'POST' }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assert.equal(accounts.size, 1, 'completed once');
    const after = (await client.request('/signup')).json<FlowView>();
    assert.equal(after.step, 'email');
    assert.equal(after.runId, null);

    const other = new CookieClient(server.app.url);
    assert.equal((await other.request('/signup/email', { json: { email: 'grace@uni.edu' } })).json<FlowView>().step, 'plan');
    assert.notEqual((await other.request('/signup')).json<FlowView>().runId, runId, 'another visitor has a flow of their own');
    assert.equal((await client.request('/signup')).json<FlowView>().runId, null);
  });

  it('session flow when two requests of one session post steps at once then both steps are kept', async (t) => {
    const file = await tempSqliteFile();
    t.after(() => file.remove());
    const server = await start(file.path, new Map());
    t.after(() => server.close());
    const client = new CookieClient(server.app.url);
    await client.request('/signup/email', { json: { email: 'ada@example.com' } });
    for (const email of ['grace@uni.edu', 'edsger@uni.edu', 'barbara@uni.edu']) {
      // Either order is valid: the email re-posted first, then the plan after it, or the plan first and the
      // email after it (the flow then waits for the plan again). Neither request's step is lost.
      const [a, b] = await Promise.all([
        client.request('/signup/email', { json: { email } }),
        client.request('/signup/plan', { json: { plan: 'pro' } }),
      ]);
      assert.equal(a.status, 200, a.body);
      assert.equal(b.status, 200, b.body);
      const v = (await client.request('/signup')).json<FlowView>();
      assert.deepEqual(v.data.email, { email });
      assert.equal((v.data.plan as { plan: string }).plan, 'pro');
      await client.request('/signup/plan', { json: { plan: 'student' } });
      assert.equal((await client.request('/signup')).json<FlowView>().step, 'confirm');
    }
  });
});
