/**
 * docs/migrating-from-fastify-session.md's example: the app as it was on @fastify/session (built here,
 * as the guide's "before" column says) and as it is on Tether (examples/fastify-session-migrated.ts,
 * started as a user would), driven by one browser script. Both answer it alike; concurrent adds to
 * one cart are all kept on Tether.
 */
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import type { FastifyRequest } from 'fastify';
import { CookieClient } from '../helpers/cookie-client.js';
import { startExample } from '../helpers/example.js';
import { listen as listenOn } from '../../src/testing/adapter-kit.js';

// Loaded untyped: @fastify/session's declaration of `request.session` and Tether's cannot share one type-check.
const require = createRequire(import.meta.url);
const SECRET = 'fastify-session-migration-secret-0123456789';

interface OldSession {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
  regenerate(keep?: readonly string[]): Promise<void>;
  destroy(): Promise<void>;
}

/** The guide's "before": the same routes on @fastify/session, as its README writes them. */
async function beforeApp(t: TestContext): Promise<string> {
  const app = Fastify();
  await app.register(require('@fastify/cookie'));
  await app.register(require('@fastify/session'), { secret: SECRET, cookie: { secure: false, maxAge: 1_800_000 }, saveUninitialized: false });
  const session = (req: FastifyRequest): OldSession => (req as unknown as { session: OldSession }).session;
  const cartOf = (req: FastifyRequest): string[] => (session(req).get('cart') as string[] | undefined) ?? [];
  app.get('/me', async (req) => ({ user: session(req).get('user') ?? null, cart: cartOf(req) }));
  app.post('/cart', async (req) => {
    const cart = cartOf(req);
    // What a handler does between reading and writing (a price lookup, a stock check).
    await new Promise((r) => setTimeout(r, 2));
    session(req).set('cart', [...cart, (req.body as { item: string }).item]);
    return { cart: cartOf(req) };
  });
  app.post('/login', async (req) => {
    const { user } = req.body as { user: string };
    await session(req).regenerate(['cart']);
    session(req).set('user', user);
    return { user };
  });
  app.post('/logout', async (req) => {
    await session(req).destroy();
    return { user: null };
  });
  await app.ready();
  const running = await listenOn(app.server);
  t.after(() => running.close());
  return running.url;
}

interface Me {
  user: string | null;
  cart: string[];
  csrfToken?: string;
}

/**
 * One visitor: looks, adds to the cart, logs in (the cart is kept, the ID changes), adds again, adds 20
 * more at once, logs out. Returns what it saw, for both apps to be compared, and how many of the 20
 * concurrent adds were kept.
 */
async function visit(base: string): Promise<{ seen: unknown[]; kept: number }> {
  const browser = new CookieClient(base);
  let token = '';
  const post = async (path: string, json: unknown, client = browser): Promise<Record<string, unknown>> => {
    const r = await client.request(path, { json, headers: { 'x-csrf-token': token } });
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    const body = r.json<Record<string, unknown>>();
    if (typeof body.csrfToken === 'string') token = body.csrfToken;
    return body;
  };
  const me = async (client = browser): Promise<Me> => {
    const body = (await client.request('/me')).json<Me>();
    if (body.csrfToken !== undefined && client === browser) token = body.csrfToken;
    return { user: body.user, cart: body.cart };
  };
  const seen: unknown[] = [await me()];
  seen.push((await post('/cart', { item: 'tea' })).cart);
  const before = browser.clone();
  seen.push((await post('/login', { user: 'ada' })).user);
  assert.notDeepEqual([...browser.jar.values()], [...before.jar.values()], 'the login changed the session ID');
  seen.push(await me(), await me(before));
  seen.push((await post('/cart', { item: 'jam' })).cart);
  await Promise.all(Array.from({ length: 20 }, (_, i) => post('/cart', { item: `x${i}` })));
  const after = await me();
  const kept = after.cart.filter((item) => item.startsWith('x')).length;
  seen.push(after.user, after.cart.slice(0, 2));
  const stolen = browser.clone();
  seen.push((await post('/logout', {})).user, await me(), await me(stolen));
  return { seen, kept };
}

describe('migrating from @fastify/session (docs/migrating-from-fastify-session.md)', () => {
  it('guide when read then shows examples/fastify-session-migrated.ts, equal to its file', () => {
    const doc = readFileSync('docs/migrating-from-fastify-session.md', 'utf8');
    const m = /<!-- example: examples\/fastify-session-migrated\.ts -->\s*```ts\n([\s\S]*?)```/.exec(doc);
    assert.ok(m, 'the guide shows the example');
    assert.equal(m[1], readFileSync('examples/fastify-session-migrated.ts', 'utf8'));
  });

  it('app when moved from @fastify/session to Tether then a visitor sees the same answers, and concurrent adds are all kept', async (t) => {
    const old = await visit(await beforeApp(t));
    const migrated = await visit(await startExample(t, 'examples/fastify-session-migrated.ts', '/me'));
    const expected = [
      { user: null, cart: [] },
      ['tea'],
      'ada',
      { user: 'ada', cart: ['tea'] },
      { user: null, cart: [] },
      ['tea', 'jam'],
      'ada', ['tea', 'jam'],
      null, { user: null, cart: [] }, { user: null, cart: [] },
    ];
    assert.deepEqual(old.seen, expected, '@fastify/session');
    assert.deepEqual(migrated.seen, expected, 'Tether');
    assert.equal(migrated.kept, 20, 'every concurrent add is in the cart');
    t.diagnostic(`@fastify/session kept ${old.kept} of 20 concurrent adds`);
  });
});
