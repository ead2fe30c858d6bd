/**
 * Every README example, and docs/flows.md's, is a file in examples/ and runs: the marked code blocks
 * must equal those files, and each file is started as a user would start it and driven over HTTP.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startExample } from '../helpers/example.js';

function examplesIn(doc: string): { file: string; code: string }[] {
  return [...readFileSync(doc, 'utf8').matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)].map((m) => ({ file: m[1]!, code: m[2]! }));
}
const blocks = examplesIn('README.md');

describe('README examples', () => {
  it('readme when read then shows one example per adapter, each equal to its file in examples/', () => {
    assert.deepEqual(blocks.map((b) => b.file).sort(), ['examples/express-session-compat.ts', 'examples/express.ts', 'examples/fastify.ts', 'examples/hono.ts', 'examples/node-http.ts']);
    for (const b of blocks) assert.equal(b.code, readFileSync(b.file, 'utf8'), `${b.file} differs from its README block`);
  });

  for (const file of ['examples/node-http.ts', 'examples/express.ts', 'examples/fastify.ts', 'examples/hono.ts']) {
    it(`${file} when started then keeps a visit counter per session behind a CSRF token`, async (t) => {
      const base = await startExample(t, file, '/api/session');

      const first = await fetch(`${base}/api/session`);
      const { csrfToken, visits } = (await first.json()) as { csrfToken: string; visits: number };
      assert.equal(visits, 0);
      const setCookie = first.headers.get('set-cookie');
      assert.ok(setCookie, 'asking for the CSRF token creates the session');
      assert.match(setCookie, /HttpOnly/);
      const cookie = setCookie.split(';')[0]!;

      const refused = await fetch(`${base}/api/visits`, { method: 'POST', headers: { cookie } });
      assert.equal(refused.status, 403);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'CSRF_TOKEN_INVALID');

      for (let i = 1; i <= 2; i++) {
        const res = await fetch(`${base}/api/visits`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { visits: number }).visits, i);
      }
      const other = await fetch(`${base}/api/session`);
      assert.equal(((await other.json()) as { visits: number }).visits, 0, 'another client has its own session');
    });
  }

  it('examples/express-session-compat.ts when started then counts views per session like express-session', async (t) => {
    const base = `${await startExample(t, 'examples/express-session-compat.ts', '/')}/`;
    const first = await fetch(base);
    assert.equal(await first.text(), 'views: 1');
    const cookie = first.headers.get('set-cookie')?.split(';')[0];
    assert.ok(cookie);
    const second = await fetch(base, { headers: { cookie } });
    assert.equal(await second.text(), 'views: 2');
    assert.equal(await (await fetch(base)).text(), 'views: 1', 'a client without the cookie starts again');
  });

  it('examples/forms.ts when started then stores a note posted by a same-origin form with its _csrf field, and nothing without it', async (t) => {
    const base = await startExample(t, 'examples/forms.ts', '/');
    const first = await fetch(`${base}/`);
    const page = await first.text();
    assert.match(page, /<form method="post" action="\/notes">/);
    const csrf = /<input type="hidden" name="_csrf" value="([\w-]+)">/.exec(page)?.[1];
    assert.ok(csrf, 'the page holds the session\'s token in a hidden field');
    const cookie = first.headers.get('set-cookie')?.split(';')[0];
    assert.ok(cookie, 'rendering the token creates the session');
    const notes = async () => [...(await (await fetch(`${base}/`, { headers: { cookie } })).text()).matchAll(/<li>(.*?)<\/li>/g)].map((m) => m[1]);
    // What a browser sends for a form on the page: its own Origin, the urlencoded body, no token header.
    const post = (fields: Record<string, string>, origin = base) => fetch(`${base}/notes`, {
      method: 'POST', redirect: 'manual', body: new URLSearchParams(fields),
      headers: { cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
    });
    const refusedWith = async (res: Response, code: string) => {
      assert.equal(res.status, 403);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
    };

    const added = await post({ _csrf: csrf, note: 'buy <milk> & "eggs"' });
    assert.equal(added.status, 303);
    assert.equal(added.headers.get('location'), '/');
    assert.deepEqual(await notes(), ['buy &#60;milk&#62; &#38; &#34;eggs&#34;'], 'the note is listed, escaped');

    await refusedWith(await post({ note: 'no token' }), 'CSRF_TOKEN_INVALID');
    await refusedWith(await post({ _csrf: 'guess', note: 'wrong token' }), 'CSRF_TOKEN_INVALID');
    await refusedWith(await post({ _csrf: csrf, note: 'elsewhere' }, 'http://127.0.0.1:1'), 'ORIGIN_MISMATCH');
    assert.equal((await notes()).length, 1, 'no refused post stored its note');

    // The token header passes a JSON body, which no parser of the example reads: not a note, not a crash.
    const json = await fetch(`${base}/notes`, {
      method: 'POST', redirect: 'manual', body: '{"note":"json"}',
      headers: { cookie, origin: base, 'x-csrf-token': csrf, 'content-type': 'application/json' },
    });
    assert.equal(json.status, 303);
    assert.equal((await notes()).length, 1);
  });
});

describe('docs examples', () => {
  it('flows.md when read then leads with examples/flow.ts, equal to its file', () => {
    const flows = examplesIn('docs/flows.md');
    assert.deepEqual(flows.map((b) => b.file), ['examples/flow.ts']);
    assert.equal(flows[0]!.code, readFileSync('examples/flow.ts', 'utf8'), 'examples/flow.ts differs from its block in docs/flows.md');
  });

  it('examples/flow.ts when started then takes the steps in order, checks a step against the one before, and completes once', async (t) => {
    const base = await startExample(t, 'examples/flow.ts', '/api/flow');
    const first = await fetch(`${base}/api/flow`);
    const view = (await first.json()) as { step: string; steps: string[]; runId: string | null; csrfToken: string };
    assert.equal(view.step, 'plan');
    assert.deepEqual(view.steps, ['plan', 'seats', 'confirm']);
    assert.equal(view.runId, null);
    const cookie = first.headers.get('set-cookie')?.split(';')[0];
    assert.ok(cookie, 'asking for the CSRF token creates the session');
    // Back and complete take no body, and Fastify refuses a JSON content type with an empty one.
    const post = (path: string, body?: unknown) => fetch(`${base}/api/flow/${path}`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': view.csrfToken, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

    const refused = await fetch(`${base}/api/flow/plan`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{"plan":"team"}' });
    assert.equal(refused.status, 403);
    assert.equal(await errorCode(refused), 'CSRF_TOKEN_INVALID');

    const early = await post('seats', { seats: 2 });
    assert.equal(early.status, 409);
    assert.equal(await errorCode(early), 'FLOW_STEP_OUT_OF_ORDER');

    const plan = await post('plan', { plan: 'starter' });
    assert.equal(plan.status, 200);
    const afterPlan = (await plan.json()) as { step: string; data: object; runId: string };
    assert.equal(afterPlan.step, 'seats');
    assert.deepEqual(afterPlan.data, { plan: 'starter' });
    assert.ok(afterPlan.runId);

    const tooMany = await post('seats', { seats: 20 });
    assert.equal(tooMany.status, 400, 'the starter plan chosen before takes at most 5 seats');
    assert.equal(await errorCode(tooMany), 'VALIDATION_FAILED');
    assert.equal(((await (await fetch(`${base}/api/flow`, { headers: { cookie } })).json()) as { step: string }).step, 'seats', 'a refused step changes nothing');

    const seats = await post('seats', { seats: 3 });
    assert.equal(seats.status, 200);
    assert.equal(((await seats.json()) as { step: string }).step, 'confirm');
    const back = await post('back');
    assert.equal(back.status, 200);
    assert.deepEqual((await back.json()), { flow: 'signup', step: 'seats', index: 1, steps: ['plan', 'seats', 'confirm'], data: { plan: 'starter', seats: 3 }, runId: afterPlan.runId });
    assert.equal((await post('seats', { seats: 4 })).status, 200);

    const done = await post('complete');
    assert.equal(done.status, 201);
    assert.deepEqual(await done.json(), { runId: afterPlan.runId, plan: 'starter', seats: 4 });
    const again = await post('complete');
    assert.equal(again.status, 409, 'the run ended with the first completion');
    assert.equal(await errorCode(again), 'FLOW_STEP_OUT_OF_ORDER');
    assert.equal(((await (await fetch(`${base}/api/flow`, { headers: { cookie } })).json()) as { step: string }).step, 'plan');
  });
});
