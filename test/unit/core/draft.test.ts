/** Copy-on-write drafts over shared decoded data: what a route can do with `session.data`, and what it leaves shared. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { draft, draftChanged } from '../../../src/core/draft.js';
import { jsonExact } from '../../../src/core/decoded.js';
import { rig, trip } from '../support.js';

interface Data {
  [key: string]: unknown;
  cart: Array<{ sku: string; qty: number }>;
  prefs: { theme: string; tags: string[] };
  n: number;
}

/** A decoded original, frozen all the way down: a write that reached it would throw. */
function original(): Data {
  const freeze = <V>(v: V): V => {
    if (v !== null && typeof v === 'object') {
      for (const e of Object.values(v)) freeze(e);
      Object.freeze(v);
    }
    return v;
  };
  return freeze(JSON.parse('{"cart":[{"sku":"mug","qty":1},{"sku":"lamp","qty":2}],"prefs":{"theme":"dark","tags":["a"]},"n":0}') as Data);
}

/** The plain data a draft finishes to (what the commit encodes and keeps). */
function finished(d: object): Data {
  const out = jsonExact(d);
  assert.ok(out !== undefined, 'plain JSON data finishes exactly');
  assert.equal(out.text, JSON.stringify(out.value), 'the text built with the copy is its JSON');
  return out.value as Data;
}

/** A small seeded generator (mulberry32), so a failing sequence can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Strings and numbers whose JSON takes care: escapes, control characters, lone surrogates, exponents, -0. */
const AWKWARD = ['', '"', '\\', '\n\t\u0001', 'é', '😀', '\ud800', 'a\u2028b', '</script>', -0, 0.1, 1e21, 1e-7, -1.5, 2 ** 53, 123456789];
const KEYS = ['a', 'b', 'cart', '10', '2', '-1', '01', '', '"q"', 'ключ', 'x y'];

describe('drafts', () => {
  it('draft when only read then reports no change, and reads every value of the original', () => {
    const base = original();
    const d = draft(base);
    assert.equal(d.n, 0);
    assert.equal(d.cart.length, 2);
    assert.equal(d.cart[1]!.sku, 'lamp');
    assert.deepEqual(Object.keys(d), ['cart', 'prefs', 'n']);
    assert.equal(JSON.stringify(d), JSON.stringify(base));
    assert.deepStrictEqual(d, base);
    assert.ok(Array.isArray(d.cart));
    assert.deepEqual([...d.cart].map((i) => i.sku), ['mug', 'lamp']);
    assert.deepEqual(d.cart.map((i) => i.qty), [1, 2]);
    assert.ok('prefs' in d && !('missing' in d));
    assert.equal(Object.getPrototypeOf(d), Object.prototype);
    assert.equal(d.cart, d.cart, 'a nested object is the same draft on every read');
    assert.equal(draftChanged(d), false);
    assert.equal(finished(d), base, 'an unchanged draft finishes to its original, shared');
  });

  it('draft when several nested drafts were read before their parent changed then each stays the one handle, and its changes land', () => {
    const base = original();
    const d = draft(base);
    const cart = d.cart;
    const prefs = d.prefs;
    const tags = d.prefs.tags;
    assert.equal(d.cart, cart, 'the first child read is the same draft on every read');
    assert.equal(d.prefs, prefs, 'so is the second');
    d.n = 1;
    assert.equal(d.cart, cart, 'still the same after the parent changed');
    assert.equal(d.prefs, prefs);
    assert.equal(d.prefs.tags, tags);
    cart.push({ sku: 'pen', qty: 1 });
    prefs.theme = 'light';
    tags.push('b');
    assert.deepEqual(finished(d), { cart: [{ sku: 'mug', qty: 1 }, { sku: 'lamp', qty: 2 }, { sku: 'pen', qty: 1 }], prefs: { theme: 'light', tags: ['a', 'b'] }, n: 1 });
    assert.equal(base.cart.length, 2);
    assert.equal(base.prefs.theme, 'dark');
  });

  it('draft when changed at any depth then the original stays as it was and the result shares what was not touched', () => {
    const base = original();
    const d = draft(base);
    d.cart[0]!.qty = 5;
    d.cart.push({ sku: 'pen', qty: 1 });
    d.n++;
    assert.equal(draftChanged(d), true);
    assert.equal(d.cart[0]!.qty, 5);
    assert.equal(d.cart.length, 3);
    const out = finished(d);
    assert.deepEqual(out, { cart: [{ sku: 'mug', qty: 5 }, { sku: 'lamp', qty: 2 }, { sku: 'pen', qty: 1 }], prefs: { theme: 'dark', tags: ['a'] }, n: 1 });
    assert.equal(out.prefs, base.prefs, 'an untouched subtree is shared with the original');
    assert.equal(out.cart[1], base.cart[1], 'an untouched element is shared too');
    assert.notEqual(out.cart, base.cart);
    assert.equal(base.n, 0);
    assert.deepEqual(base.cart, [{ sku: 'mug', qty: 1 }, { sku: 'lamp', qty: 2 }]);
  });

  it('draft when array methods, deletes and new objects change it then the result is what plain data would give', () => {
    const base = original();
    const d = draft(base);
    const plainCopy = JSON.parse(JSON.stringify(base)) as Data;
    for (const x of [d, plainCopy]) {
      x.cart.sort((a, b) => b.qty - a.qty);
      x.cart.splice(1, 1, { sku: 'cup', qty: 3 });
      x.prefs.tags.unshift('z');
      delete (x as Partial<Data>).n;
      x.extra = { nested: { list: [1, 2] } };
      (x.extra as { nested: { list: number[] } }).nested.list.push(3);
    }
    assert.deepStrictEqual(finished(d), plainCopy);
    assert.deepStrictEqual(d, plainCopy);
    assert.equal(JSON.stringify(d), JSON.stringify(plainCopy));
  });

  it('draft when each version is changed at random and finished, and the next drafted over it, then every text is JSON.stringify of its data', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = random(seed);
      const pick = <V>(list: readonly V[]): V => list[Math.floor(rnd() * list.length)]!;
      const leaf = (): unknown => (rnd() < 0.5 ? pick(AWKWARD) : pick([true, false, null, Math.floor(rnd() * 100), `s${Math.floor(rnd() * 1000)}`]));
      const tree = (depth: number): unknown => {
        if (depth > 3 || rnd() < 0.3) return leaf();
        if (rnd() < 0.4) return Array.from({ length: Math.floor(rnd() * 4) }, () => tree(depth + 1));
        const o: Record<string, unknown> = {};
        for (let i = Math.floor(rnd() * 4); i > 0; i--) o[pick(KEYS)] = tree(depth + 1);
        return o;
      };
      // The same changes on a draft and on plain data: a path of objects and arrays, then a change at its end.
      const change = (x: Record<string, unknown>, plan: number[]): void => {
        let at: unknown = x;
        for (const r of plan.slice(0, -1)) {
          const keys = Array.isArray(at) ? [...at.keys()] : Object.keys(at as object);
          const next = keys.length === 0 ? undefined : (at as Record<string, unknown>)[keys[Math.floor(r * keys.length)]!];
          if (next === null || typeof next !== 'object') break;
          at = next;
        }
        const r = plan.at(-1)!;
        if (Array.isArray(at)) {
          if (r < 0.3) at.push(plan.length);
          else if (r < 0.5 && at.length > 0) at.pop();
          else if (at.length > 0) at[Math.floor(r * at.length)] = { v: r };
        } else {
          const o = at as Record<string, unknown>;
          const k = KEYS[Math.floor(r * KEYS.length)]!;
          if (r < 0.2 && k in o) delete o[k];
          else o[k] = r < 0.6 ? Math.floor(r * 1000) : [AWKWARD[Math.floor(r * AWKWARD.length)]];
        }
      };
      const start = { ...(tree(0) as object), cart: [{ sku: 'mug', qty: 1 }], prefs: { theme: 'dark', tags: ['é', '"'] } };
      let current = JSON.parse(JSON.stringify(start)) as Data;
      let plain = JSON.parse(JSON.stringify(start)) as Data;
      for (let version = 0; version < 30; version++) {
        const d = draft(current);
        const plans = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => Array.from({ length: 1 + Math.floor(rnd() * 4) }, rnd));
        for (const plan of plans) {
          change(d, plan);
          change(plain, plan);
        }
        const out = jsonExact(d);
        assert.ok(out !== undefined, `seed ${seed} version ${version}: JSON data finishes exactly`);
        assert.equal(out.text, JSON.stringify(plain), `seed ${seed} version ${version}`);
        // The copy is what the text decodes to (-0 included, written "0").
        assert.deepStrictEqual(out.value, JSON.parse(out.text));
        // What the engine does: the copy becomes the next request's original.
        current = out.value;
        plain = JSON.parse(JSON.stringify(plain)) as Data;
      }
    }
  });

  it('draft when a nested draft is stored under another key then each place finishes to its own plain copy', () => {
    const d = draft(original());
    d.saved = d.cart;
    d.wrapped = { items: d.cart };
    d.cart.push({ sku: 'pen', qty: 1 });
    const out = finished(d) as Data & { saved: unknown; wrapped: { items: unknown } };
    assert.deepEqual(out.saved, out.cart);
    assert.deepEqual(out.wrapped.items, out.cart);
    assert.equal(out.cart.length, 3);
    assert.notEqual(out.saved, out.cart);
  });

  it('draft when a nested object is replaced then changes through the old handle no longer reach the data', () => {
    const d = draft(original());
    const oldCart = d.cart;
    d.cart = [];
    oldCart.push({ sku: 'pen', qty: 1 });
    assert.deepEqual(finished(d).cart, []);
  });

  it('draft when the route keeps values of its own in it then a Date or undefined makes the result inexact, as plain data does', () => {
    const d = draft(original());
    d.when = new Date(0);
    assert.equal(jsonExact(d)?.value, undefined);
    assert.equal(JSON.parse(JSON.stringify(d)).when, '1970-01-01T00:00:00.000Z');
  });

  it('draft when frozen or given a new prototype then it refuses, and its original is untouched', () => {
    const base = original();
    const d = draft(base);
    assert.throws(() => Object.freeze(d), TypeError);
    assert.throws(() => Object.setPrototypeOf(d, null), TypeError);
    assert.equal(draftChanged(d), false);
  });

  it('draft when inspected then shows the data, changes included, not the machinery', () => {
    const d = draft(original());
    d.cart[0]!.qty = 7;
    const shown = inspect(d, { depth: 5 });
    assert.match(shown, /qty: 7/);
    assert.match(shown, /theme: 'dark'/);
    assert.doesNotMatch(shown, /base|children|parent/);
    assert.equal(inspect(d.cart), inspect(JSON.parse(JSON.stringify(d.cart))), 'an array draft shows as its elements');
    d.cart.push({ sku: 'lamp', qty: 1 }, { sku: 'a-longer-name-that-breaks-the-line', qty: 1 });
    assert.equal(inspect({ at: { cart: d.cart } }), inspect({ at: { cart: JSON.parse(JSON.stringify(d.cart)) } }));
  });
});

describe('session.data as a draft', () => {
  it('snapshot when taken then is plain data structuredClone accepts, and changing it changes nothing', async () => {
    const r = rig<Data>();
    const first = await trip(r.tether, undefined, (s) => {
      s.set('cart', [{ sku: 'mug', qty: 1 }]);
      s.set('n', 1);
    });
    await trip(r.tether, first.cookie, (s) => {
      assert.throws(() => structuredClone(s.data), /could not be cloned/);
      s.data.n = 2;
      const snap = s.snapshot();
      assert.deepEqual(structuredClone(snap), { cart: [{ sku: 'mug', qty: 1 }], n: 2 });
      snap.cart![0]!.qty = 99;
      assert.equal(s.data.cart![0]!.qty, 1);
    });
    await trip(r.tether, first.cookie, (s) => assert.deepEqual(s.snapshot(), { cart: [{ sku: 'mug', qty: 1 }], n: 2 }), 'GET');
  });
});
