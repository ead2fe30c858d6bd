/**
 * HTML form posts with `csrf.forms`, the same cases for every adapter over a real loopback server: the
 * token from the `_csrf` field (or `formField`), the header still accepted, and every refusal made
 * before the handler runs. An adapter's test file supplies a tiny app serving `FormApp`'s routes.
 */
import { it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Tether } from '../../src/core/engine.js';
import type { CsrfOptions } from '../../src/core/options.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import type { Session } from '../../src/core/session.js';
import { jsonOf } from '../../src/testing/adapter-kit.js';
import type { RunningApp } from '../../src/testing/adapter-kit.js';

export interface FormData {
  cart: string[];
}

export const FORM_SECRET = 'csrf-forms-secret-0123456789-abcdefghijkl';

/**
 * What the app under test serves: GET /token ({ token }), GET /state ({ cart }), and POST /add, whose
 * handler reads the parsed form, records the call in `seen` (the side effect a refused request must not
 * have), adds `item` to the cart, and answers { cart, fields } with the fields as the handler read them.
 */
export type StartFormApp = (tether: Tether<FormData>, seen: unknown[]) => Promise<RunningApp>;

/** The handler of POST /add, shared by every app: `fields` is the parsed body as the handler reads it. */
export async function addItem(session: Session<FormData>, fields: unknown, seen: unknown[]): Promise<{ cart: string[]; fields: unknown }> {
  seen.push(fields);
  const item = String((fields as Record<string, unknown> | undefined)?.item);
  await session.update((d) => void (d.cart = [...(d.cart ?? []), item]));
  return { cart: session.data.cart ?? [], fields };
}

export interface FormReply {
  status: number;
  json: Record<string, unknown> | undefined;
  code: string | undefined;
  message: string | undefined;
}

export interface FormEnv {
  tether: Tether<FormData>;
  app: RunningApp;
  seen: unknown[];
  cookie: string;
  token: string;
  /** POSTs `body` (a urlencoded string, or FormData for multipart) same-origin with the session cookie. */
  post(path: string, body: string | globalThis.FormData, headers?: Record<string, string>): Promise<FormReply>;
  cart(): Promise<string[]>;
}

const URLENCODED = 'application/x-www-form-urlencoded';

/** A fresh app with a session (its cookie and token fetched through GET /token); `csrf` null: the engine's default. */
export async function formSetup(t: TestContext, start: StartFormApp, csrf: CsrfOptions | null = { forms: true }): Promise<FormEnv> {
  const tether = new Tether<FormData>({ secrets: [FORM_SECRET], store: new MemoryStore({ sweepIntervalMs: 0 }), ...(csrf ? { csrf } : {}) });
  const seen: unknown[] = [];
  const app = await start(tether, seen);
  t.after(() => app.close());
  const res = await fetch(`${app.url}/token`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200);
  const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
  const { token } = (await res.json()) as { token: string };
  const post = async (path: string, body: string | globalThis.FormData, headers: Record<string, string> = {}): Promise<FormReply> => {
    const h: Record<string, string> = { cookie, origin: app.url, ...headers };
    if (typeof body === 'string') h['content-type'] ??= URLENCODED;
    const r = await fetch(app.url + path, { method: 'POST', headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    const json = jsonOf(await r.text());
    const error = json?.error as { code?: string; message?: string } | undefined;
    return { status: r.status, json, code: error?.code, message: error?.message };
  };
  const cart = async (): Promise<string[]> => {
    const r = await fetch(`${app.url}/state`, { headers: { cookie }, signal: AbortSignal.timeout(10_000) });
    return ((await r.json()) as { cart: string[] }).cart;
  };
  return { tether, app, seen, cookie, token, post, cart };
}

/** Asserts a refusal that the handler never saw and that stored nothing. */
export async function refused(env: FormEnv, reply: FormReply, status: number, code: string, what: string): Promise<void> {
  assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.json)}`);
  assert.equal(reply.code, code, what);
  assert.deepEqual(env.seen, [], `${what}: the handler did not run`);
  assert.deepEqual(await env.cart(), [], `${what}: nothing stored`);
}

const enc = encodeURIComponent;

/**
 * The cases every adapter passes. `bodyParameterLimit`: the most parameters the app's own body parser
 * takes (Express's `urlencoded()` stops at 1,000 with 413), where the library does not read the body itself.
 */
export function formCases(name: string, start: StartFormApp, bodyParameterLimit = Infinity): void {
  it(`${name}: urlencoded form post when _csrf carries the session's token then the handler runs and its session change is stored`, async (t) => {
    const env = await formSetup(t, start);
    const reply = await env.post('/add', `item=tea&_csrf=${enc(env.token)}`);
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    assert.deepEqual(reply.json?.cart, ['tea']);
    assert.equal(env.seen.length, 1);
    assert.deepEqual(await env.cart(), ['tea']);
  });

  it(`${name}: form post when _csrf is wrong, another session's, missing or repeated then 403 CSRF_TOKEN_INVALID before the handler`, async (t) => {
    const env = await formSetup(t, start);
    const other = await formSetup(t, start);
    await refused(env, await env.post('/add', 'item=tea&_csrf=wrong'), 403, 'CSRF_TOKEN_INVALID', 'wrong');
    await refused(env, await env.post('/add', `item=tea&_csrf=${enc(other.token)}`), 403, 'CSRF_TOKEN_INVALID', 'another session\'s token');
    await refused(env, await env.post('/add', 'item=tea'), 403, 'CSRF_TOKEN_INVALID', 'missing');
    await refused(env, await env.post('/add', `item=tea&_csrf=${enc(env.token)}&_csrf=${enc(env.token)}`), 403, 'CSRF_TOKEN_INVALID', 'repeated');
    await refused(env, await env.post('/add', `item=tea&_csrf=x&_csrf=${enc(env.token)}`), 403, 'CSRF_TOKEN_INVALID', 'repeated, the right one last');
  });

  it(`${name}: urlencoded form post with 10,000 parameters when the token is the last of them then it passes, or the app's parser refuses the body; without it then 403 before the handler`, async (t) => {
    const env = await formSetup(t, start);
    const many = Array.from({ length: 10_000 }, (_, i) => `${i.toString(36)}=`).join('&');
    assert.ok(many.length < 100 * 1024, 'within the default formBodyLimit');
    if (bodyParameterLimit < 10_000) {
      // The app's parser refuses the body before the CSRF check or the handler see it.
      for (const body of [`item=tea&${many}`, `item=tea&${many}&_csrf=${enc(env.token)}`]) {
        const reply = await env.post('/add', body);
        assert.equal(reply.status, 413);
        assert.deepEqual(env.seen, []);
      }
      assert.deepEqual(await env.cart(), []);
      return;
    }
    await refused(env, await env.post('/add', `item=tea&${many}`), 403, 'CSRF_TOKEN_INVALID', '10,000 parameters, no token');
    const reply = await env.post('/add', `item=tea&${many}&_csrf=${enc(env.token)}`);
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    assert.deepEqual(await env.cart(), ['tea']);
  });

  it(`${name}: form post when its Origin is another site's then 403 ORIGIN_MISMATCH even with the right token`, async (t) => {
    const env = await formSetup(t, start);
    const body = `item=tea&_csrf=${enc(env.token)}`;
    await refused(env, await env.post('/add', body, { origin: 'https://evil.example' }), 403, 'ORIGIN_MISMATCH', 'cross-site Origin');
    await refused(env, await env.post('/add', body, { origin: 'null' }), 403, 'ORIGIN_MISMATCH', 'Origin null');
    await refused(env, await env.post('/add', body, { 'sec-fetch-site': 'cross-site' }), 403, 'ORIGIN_MISMATCH', 'Sec-Fetch-Site cross-site');
  });

  it(`${name}: form post when forms are off (the default) then 415 UNSUPPORTED_MEDIA_TYPE as before`, async (t) => {
    const env = await formSetup(t, start, null);
    await refused(env, await env.post('/add', `item=tea&_csrf=${enc(env.token)}`), 415, 'UNSUPPORTED_MEDIA_TYPE', 'forms off');
  });

  it(`${name}: formField when set then the token is read from that field, no longer from _csrf`, async (t) => {
    const env = await formSetup(t, start, { forms: true, formField: 'authenticity_token' });
    await refused(env, await env.post('/add', `item=tea&_csrf=${enc(env.token)}`), 403, 'CSRF_TOKEN_INVALID', '_csrf');
    const reply = await env.post('/add', `item=tea&authenticity_token=${enc(env.token)}`);
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    assert.deepEqual(await env.cart(), ['tea']);
  });

  it(`${name}: form post when the header carries the token then passes without the field, and a wrong header is not rescued by it`, async (t) => {
    const env = await formSetup(t, start);
    await refused(env, await env.post('/add', `item=tea&_csrf=${enc(env.token)}`, { 'x-csrf-token': 'wrong' }), 403, 'CSRF_TOKEN_INVALID', 'wrong header');
    const reply = await env.post('/add', 'item=tea', { 'x-csrf-token': env.token });
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    assert.deepEqual(await env.cart(), ['tea']);
  });

  it(`${name}: unsafe request when forms are on and its body is text/plain then still 415 UNSUPPORTED_MEDIA_TYPE`, async (t) => {
    const env = await formSetup(t, start);
    const body = `item=tea&_csrf=${enc(env.token)}`;
    await refused(env, await env.post('/add', body, { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain');
    await refused(env, await env.post('/add', body, { 'content-type': 'text/plain', 'x-csrf-token': env.token }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain with the header token');
  });
}

/** A urlencoded body as form parsers give it (@fastify/formbody, body-parser): a repeated field as an array. */
export function parseUrlencoded(text: string): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** A multipart form of `item` and the token (`tokens` times: twice is a repeated field). */
export function multipartForm(token: string, tokens = 1): globalThis.FormData {
  const form = new globalThis.FormData();
  form.append('item', 'tea');
  for (let i = 0; i < tokens; i++) form.append('_csrf', token);
  return form;
}

/**
 * A multipart post whose token field is repeated is refused before the handler; one carrying it once
 * passes (200). Returns that reply.
 */
export async function assertMultipartToken(env: FormEnv): Promise<FormReply> {
  assert.equal((await env.post('/add', multipartForm(env.token, 2))).code, 'CSRF_TOKEN_INVALID');
  assert.deepEqual(env.seen, []);
  const reply = await env.post('/add', multipartForm(env.token));
  assert.equal(reply.status, 200, JSON.stringify(reply.json));
  return reply;
}
