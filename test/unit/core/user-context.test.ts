/** User contexts: per-user state kept by compare-and-set, shared by every device and process of a user. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { userContextKey } from '../../../src/core/ids.js';
import { rig, sleep } from '../support.js';

describe('user contexts', () => {
  it('update when two engines change one user context at once then no change is lost', async () => {
    const a = rig();
    const b = rig({}, a);
    assert.deepEqual(await a.tether.users.get('alice'), {});
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const e = i % 2 ? a : b;
      await e.tether.users.update<{ n: number }>('alice', async (ctx) => {
        const n = ctx.n ?? 0;
        await sleep(Math.random() * 3);
        ctx.n = n + 1;
      });
    }));
    assert.deepEqual(await b.tether.users.get('alice'), { n: 20 });
  });

  it('update when nothing changes then writes nothing; clear then removes the context', async () => {
    const r = rig();
    await r.tether.users.update('bob', (ctx) => ({ ...ctx, theme: 'dark' }));
    r.store.resetCounts();
    await r.tether.users.update('bob', (ctx) => ctx);
    assert.equal(r.store.calls.set, 0);
    await r.tether.users.clear('bob');
    assert.deepEqual(await r.tether.users.get('bob'), {});
    assert.equal(await r.memory.get(userContextKey('bob')), null);
  });

  it('update when the user has no context and the function leaves nothing to keep then writes nothing', async () => {
    const r = rig();
    r.store.resetCounts();
    await r.tether.users.update('gus', () => {});
    await r.tether.users.update('gus', (ctx) => void (ctx.flash = undefined));
    await r.tether.users.update('gus', () => ({}));
    assert.equal(r.store.calls.set, 0);
    assert.equal(await r.memory.get(userContextKey('gus')), null);
  });

  it('get when a context was saved once and its user keeps coming back then it outlives userContextTtlMs, with one write per half of it; unread, it ends', async () => {
    const DAY = 86_400_000;
    const r = rig({ userContextTtlMs: 90 * DAY });
    await r.tether.users.update('ida', (ctx) => void (ctx.theme = 'dark'));
    await r.tether.users.update('jon', (ctx) => void (ctx.theme = 'light'));
    r.store.resetCounts();
    for (let day = 1; day <= 200; day++) {
      r.clock.advance(DAY);
      assert.deepEqual(await r.tether.users.get('ida'), { theme: 'dark' }, `day ${day}`);
    }
    assert.equal(r.store.calls.set, 4, 'written again at days 46, 92, 138 and 184 only');
    assert.equal(r.store.calls.touch, 0);
    const stored = await r.memory.get(userContextKey('ida'));
    assert.equal(stored?.expiresAt, r.clock.now() - 16 * DAY + 90 * DAY, 'a whole TTL from its last keeping write');
    assert.deepEqual(await r.tether.users.get('jon'), {}, 'a context nobody read ended after its TTL');
  });

  it('get when keeping a context alive meets another write or a failing store then it still answers what it read', async () => {
    const DAY = 86_400_000;
    const r = rig({ userContextTtlMs: 10 * DAY });
    await r.tether.users.update('kim', (ctx) => void (ctx.n = 1));
    r.clock.advance(6 * DAY);
    r.store.fail('set', 'reject');
    assert.deepEqual(await r.tether.users.get('kim'), { n: 1 });
    r.store.heal();
    assert.deepEqual(await r.tether.users.get('kim'), { n: 1 }, 'kept at the next read');
    assert.equal((await r.memory.get(userContextKey('kim')))?.expiresAt, r.clock.now() + 10 * DAY);
  });

  it('get when it keeps a context alive then the time it was last written stays that of its last update', async () => {
    const DAY = 86_400_000;
    const r = rig({ userContextTtlMs: 10 * DAY });
    await r.tether.users.update('lou', (ctx) => void (ctx.n = 1));
    const written = r.clock.now();
    r.clock.advance(6 * DAY);
    assert.deepEqual(await r.tether.users.get('lou'), { n: 1 });
    const stored = await r.memory.get(userContextKey('lou'));
    assert.equal(stored?.expiresAt, r.clock.now() + 10 * DAY, 'kept alive');
    assert.equal(stored?.lastSeenAt, written, 'not moved by a read');
  });

  it('update when the function leaves values JSON does not keep (a Date, NaN, undefined) then it returns what was stored, as get reads it', async () => {
    const r = rig();
    const at = new Date(Date.UTC(2026, 0, 2));
    const returned = await r.tether.users.update<Record<string, unknown>>('max', (ctx) => {
      ctx.at = at;
      ctx.n = Number.NaN;
      ctx.gone = undefined;
    });
    assert.deepEqual(returned, { at: at.toISOString(), n: null });
    assert.deepEqual(await r.tether.users.get('max'), returned);
    const again = await r.tether.users.update<Record<string, unknown>>('max', (ctx) => void (ctx.at = at));
    assert.deepEqual(again, { at: at.toISOString(), n: null }, 'unchanged, nothing written: the stored context all the same');
  });

  it('stored context when it holds __proto__ or constructor.prototype then reading it pollutes nothing and still works', async () => {
    const r = rig();
    const now = r.clock.now();
    await r.memory.set({
      key: userContextKey('carol'), data: '{"cart":[1],"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
      version: 1, userId: null, createdAt: now, lastSeenAt: now, expiresAt: now + 60_000, absoluteExpiresAt: now + 60_000,
    }, 0);
    const ctx = await r.tether.users.get<{ cart: number[] }>('carol');
    assert.deepEqual(ctx.cart, [1]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((ctx as Record<string, unknown>).polluted, undefined);
    await r.tether.users.update<{ cart: number[] }>('carol', (c) => void c.cart?.push(2));
    assert.deepEqual((await r.tether.users.get<{ cart: number[] }>('carol')).cart, [1, 2]);
  });

  it('update when the handler returns an object with an own __proto__ key then the stored context stays readable', async () => {
    const r = rig();
    await r.tether.users.update('dave', () => JSON.parse('{"ok":true,"__proto__":{"polluted":true}}') as Record<string, unknown>);
    assert.deepEqual(await r.tether.users.get('dave'), { ok: true });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('update when the function returns a value that is not an object (an arrow that assigns or pushes) then TypeError, and the stored context is kept whole', async () => {
    const r = rig();
    await r.tether.users.update<{ cart: number[]; theme: string }>('fay', () => ({ cart: [1], theme: 'light' }));
    // What plain JavaScript writes without thinking of the return value: each returns something.
    // TypeScript lets each through as a function that returns void.
    const fns: Array<(c: Record<string, unknown>) => void> = [
      (c) => (c.theme = 'dark'),
      (c) => (c.cart as number[]).push(2),
      (c) => Object.keys(c),
      () => new Date(0),
      () => true,
      // Objects JSON stores as `{}`: each would replace the context with nothing.
      () => new Map([['theme', 'dark']]),
      () => new Set(['dark']),
      () => new (class Prefs { #theme = 'dark'; get theme(): string { return this.#theme; } })(),
    ];
    for (const fn of fns) {
      await assert.rejects(r.tether.users.update('fay', fn), TypeError, String(fn));
      assert.deepEqual(await r.tether.users.get('fay'), { cart: [1], theme: 'light' }, String(fn));
    }
    // Returning nothing, null or an object still works.
    await r.tether.users.update<{ theme: string }>('fay', (c) => void (c.theme = 'dark'));
    await r.tether.users.update('fay', () => null as unknown as void);
    assert.deepEqual(await r.tether.users.get('fay'), { cart: [1], theme: 'dark' });
    await r.tether.users.update('fay', (c) => Object.assign(Object.create(null) as object, c, { theme: 'light' }));
    assert.deepEqual(await r.tether.users.get('fay'), { cart: [1], theme: 'light' });
  });

  it('update when the context would grow past maxUserContextBytes then USER_CONTEXT_TOO_LARGE (413), nothing written, the stored context unchanged', async () => {
    const r = rig({ maxUserContextBytes: 1024 });
    await r.tether.users.update<{ notes: string[] }>('erin', () => ({ notes: ['a'.repeat(900)] }));
    r.store.resetCounts();
    await assert.rejects(
      r.tether.users.update<{ notes: string[] }>('erin', (c) => void c.notes!.push('b'.repeat(200))),
      (err: Error & { code?: string; status?: number }) => err.code === 'USER_CONTEXT_TOO_LARGE' && err.status === 413 && /over the limit of 1024/.test(err.message),
    );
    assert.equal(r.store.calls.set, 0, 'nothing written');
    assert.deepEqual(await r.tether.users.get('erin'), { notes: ['a'.repeat(900)] });
    // Counted in UTF-8 bytes: 400 three-byte characters are 1,200 bytes, over the limit in 400 code units.
    await assert.rejects(r.tether.users.update('frank', () => ({ s: '€'.repeat(400) })), { code: 'USER_CONTEXT_TOO_LARGE' });
    assert.deepEqual(await r.tether.users.get('frank'), {});
    assert.deepEqual(await r.tether.users.update('frank', () => ({ s: '€'.repeat(300) })), { s: '€'.repeat(300) }, 'just under the limit');
  });

  it('maxUserContextBytes when not a positive integer then OPTIONS_INVALID', () => {
    for (const v of [0, -1, 1.5, '64k']) assert.throws(() => rig({ maxUserContextBytes: v as number }), { code: 'OPTIONS_INVALID' });
  });
});
