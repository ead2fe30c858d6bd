/** Decoded sessions shared between requests, each request's own copy, and "changed?" by value. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DECODED_CACHE_MAX_TEXT, DecodedCache, jsonExact } from '../../../src/core/decoded.js';
import type { DecodedEntry } from '../../../src/core/decoded.js';
import { jsonCodec, jsonEnvelope } from '../../../src/core/codec.js';
import type { Envelope, SessionCodec } from '../../../src/core/codec.js';
import { rig, trip } from '../support.js';

interface Cart {
  cart: Array<{ sku: string; qty: number }>;
  n: number;
  note?: string | undefined;
}

async function seeded(options = {}) {
  const r = rig<Cart>(options);
  const first = await trip(r.tether, undefined, (s) => {
    s.set('cart', [{ sku: 'mug', qty: 1 }]);
    s.set('n', 1);
  });
  r.store.resetCounts();
  return { ...r, cookie: first.cookie! };
}

describe('decoded sessions', () => {
  it('two requests of one session when one changes its nested data in place then the other never sees it', async () => {
    const { tether, cookie } = await seeded();
    const a = await tether.open({ method: 'GET', header: (n) => (n === 'cookie' ? cookie : undefined) });
    const b = await tether.open({ method: 'GET', header: (n) => (n === 'cookie' ? cookie : undefined) });
    a.data.cart![0]!.qty = 99;
    a.data.cart!.push({ sku: 'lamp', qty: 1 });
    assert.deepEqual(b.data.cart, [{ sku: 'mug', qty: 1 }]);
    tether.abandon(a);
    tether.abandon(b);
    const c = await tether.open({ method: 'GET', header: (n) => (n === 'cookie' ? cookie : undefined) });
    assert.deepEqual(c.data.cart, [{ sku: 'mug', qty: 1 }], 'an abandoned request left the shared copy alone');
    tether.abandon(c);
  });

  it('request when it reads, or changes and reverts, then writes nothing', async () => {
    const { tether, store, cookie } = await seeded();
    await trip(tether, cookie, (s) => assert.equal(s.get('n'), 1), 'GET');
    await trip(tether, cookie, (s) => assert.equal(s.data.cart!.length, 1), 'GET');
    await trip(tether, cookie, (s) => {
      s.data.cart![0]!.qty = 5;
      s.data.cart![0]!.qty = 1;
      s.data.note = undefined; // dropped by JSON: nothing to store
    });
    assert.equal(store.writes, 0);
  });

  it('request when it changes nested data in place then the change is stored and read back', async () => {
    const { tether, store, cookie } = await seeded();
    await trip(tether, cookie, (s) => void (s.data.cart![0]!.qty = 3));
    assert.equal(store.calls.set, 1);
    await trip(tether, cookie, (s) => assert.equal(s.data.cart![0]!.qty, 3), 'GET');
  });

  it('record when another engine changed it in the store then the next read decodes the new text', async () => {
    const { tether, store, memory, clock, cookie } = await seeded();
    const other = rig<Cart>({}, { store, memory, clock }).tether;
    await trip(tether, cookie, (s) => assert.equal(s.get('n'), 1), 'GET');
    await trip(other, cookie, (s) => s.set('n', 2));
    await trip(tether, cookie, (s) => assert.equal(s.get('n'), 2), 'GET');
  });

  it('custom codec when its text differs at every encoding then an unchanged session is still not rewritten, and its values are decoded per request', async () => {
    class Money {
      constructor(readonly cents: number) {}
    }
    let nonce = 0;
    const codec: SessionCodec = {
      // A fresh nonce in every text, as an encrypting codec's random IV would give.
      encode: (env) => jsonCodec.encode({ ...env, d: { ...env.d, total: (env.d.total as Money | undefined)?.cents, nonce: ++nonce } }),
      decode: (text) => {
        const env = jsonCodec.decode(text);
        const { nonce: _n, total, ...d } = env.d;
        return { ...env, d: total === undefined ? d : { ...d, total: new Money(total as number) } };
      },
    };
    const r = rig({ codec });
    const first = await trip(r.tether, undefined, (s) => s.set('total', new Money(250)));
    r.store.resetCounts();
    await trip(r.tether, first.cookie, (s) => {
      const total = s.get('total');
      assert.ok(total instanceof Money, 'the codec\'s own types reach the handler');
      assert.equal(total.cents, 250);
    }, 'GET');
    assert.equal(r.store.writes, 0, 'equal by value: nothing written despite a text that would differ');
    await trip(r.tether, first.cookie, (s) => s.set('total', new Money(300)));
    assert.equal(r.store.calls.set, 1);
  });

  it('cache when its characters exceed the bound then drops the oldest entries, and a changed text replaces its entry', () => {
    const cache = new DecodedCache(100);
    let decodes = 0;
    const decode = (text: string) => (decodes++, jsonCodec.decode(text));
    const text = (n: number) => `{"d":{"n":${n},"pad":"${'x'.repeat(20)}"}}`;
    for (let i = 0; i < 5; i++) cache.envelope(`k${i}`, text(i), { decode });
    assert.ok(cache.size < 5 && cache.size >= 2, `bounded by characters (${cache.size} kept)`);
    assert.equal(decodes, 5);
    cache.envelope('k4', text(4), { decode });
    assert.equal(decodes, 5, 'the newest entry is served from the cache');
    cache.envelope('k0', text(0), { decode });
    assert.equal(decodes, 6, 'the oldest one was dropped');
    assert.equal(cache.envelope('k4', text(44), { decode }).d.n, 44, 'another text under the same key is decoded again');
    cache.forget('k4');
    cache.envelope('k4', text(44), { decode });
    assert.equal(decodes, 8);
  });

  it('prime when the key is held then updates its entry in place: served without decoding, through its holder too, within the bound', () => {
    const cache = new DecodedCache(100);
    let decodes = 0;
    const decode = (text: string) => (decodes++, jsonCodec.decode(text));
    const text = (n: number, pad = 20) => `{"d":{"n":${n},"pad":"${'x'.repeat(pad)}"}}`;
    const holder = { decoded: undefined as DecodedEntry | undefined };
    cache.envelope('a', text(1), { decode }, holder);
    cache.envelope('b', text(2), { decode });
    const written = jsonCodec.decode(text(3));
    cache.prime('a', text(3), written);
    assert.equal(cache.size, 2);
    assert.equal(cache.envelope('a', text(3), { decode }, holder), written, 'the primed decoding, through the holder');
    assert.equal(cache.envelope('a', text(3), { decode }), written, 'and by key');
    assert.equal(decodes, 2);
    // In place: 'a' is still the oldest, so the next entry that needs room takes it first.
    cache.envelope('c', text(4), { decode });
    assert.equal(cache.size, 2);
    cache.envelope('b', text(2), { decode });
    assert.equal(decodes, 3, "'b' was kept");
    cache.envelope('a', text(3), { decode });
    assert.equal(decodes, 4, "'a' left first");
    // Growing past the bound drops the oldest; a text too long to keep drops its entry.
    cache.prime('a', text(5, 60), jsonCodec.decode(text(5, 60)));
    assert.equal(cache.size, 1);
    assert.equal(cache.envelope('a', text(5, 60), { decode }).d.n, 5);
    assert.equal(decodes, 4);
    const huge = `{"d":{"s":"${'y'.repeat(DECODED_CACHE_MAX_TEXT)}"}}`;
    cache.prime('a', huge, jsonCodec.decode(huge));
    assert.equal(cache.size, 0);
  });

  it('holder when its entry is current then answers without the cache; when the text changed, or the entry was dropped, it decodes again and holds nothing stale', () => {
    const cache = new DecodedCache(100);
    let decodes = 0;
    const decode = (text: string) => (decodes++, jsonCodec.decode(text));
    const text = (n: number) => `{"d":{"n":${n},"pad":"${'x'.repeat(20)}"}}`;
    const holder = { decoded: undefined as DecodedEntry | undefined };
    const first = cache.envelope('k', text(1), { decode }, holder);
    assert.equal(holder.decoded?.env, first, 'the holder points at the entry kept');
    cache.forget('k');
    assert.equal(holder.decoded?.text, undefined, 'a forgotten entry keeps neither its text nor its decoding alive');
    assert.equal(cache.envelope('k', text(1), { decode }, holder).d.n, 1);
    assert.equal(decodes, 2, 'a dropped entry is not served through its holder');
    assert.equal(cache.envelope('k', text(1), { decode }, holder), holder.decoded?.env);
    assert.equal(decodes, 2, 'a current entry is served through its holder');
    assert.equal(cache.envelope('k', text(2), { decode }, holder).d.n, 2, 'a changed text is decoded again, not served from the holder');
    assert.equal(decodes, 3);
    for (let i = 0; i < 5; i++) cache.envelope(`other${i}`, text(10 + i), { decode });
    assert.equal(holder.decoded?.text, undefined, 'an entry evicted by the bound is released by its holder too');
    assert.equal(cache.envelope('k', text(2), { decode }, holder).d.n, 2);
    assert.equal(decodes, 9);
    const big = `{"d":{"s":"${'y'.repeat(DECODED_CACHE_MAX_TEXT)}"}}`;
    assert.equal((cache.envelope('big', big, { decode }, holder).d.s as string).length, DECODED_CACHE_MAX_TEXT);
    assert.equal(holder.decoded, undefined, 'a text too large to keep is not held either');
  });

  it('written data when it is plain JSON then the next request reads it back equal, and changing it there leaves the stored copy alone', async () => {
    const { tether, cookie } = await seeded();
    await trip(tether, cookie, (s) => s.update((d) => { d.cart!.push({ sku: 'lamp', qty: 2 }); }));
    // eslint-disable-next-line @typescript-eslint/unbound-method -- the original, wrapped by the counting stub and put back after; jsonCodec's decode does not use `this`
    const decode = jsonCodec.decode;
    let decodes = 0;
    jsonCodec.decode = (text) => (decodes++, decode(text));
    let a;
    try {
      a = await tether.open({ method: 'GET', header: (n) => (n === 'cookie' ? cookie : undefined) });
    } finally {
      jsonCodec.decode = decode;
    }
    assert.equal(decodes, 0, 'the text this engine wrote is not decoded again');
    assert.deepEqual(a.data.cart, [{ sku: 'mug', qty: 1 }, { sku: 'lamp', qty: 2 }]);
    a.data.cart.pop();
    tether.abandon(a);
    await trip(tether, cookie, (s) => assert.equal(s.data.cart!.length, 2, 'the kept copy was not the request\'s'), 'GET');
  });

  it('written data when JSON would change it (a Date, NaN) then the next request reads what JSON gives back', async () => {
    const { tether, cookie } = await seeded();
    const when = new Date(Date.UTC(2026, 10, 28));
    await trip(tether, cookie, (s) => {
      (s.data as Record<string, unknown>).when = when;
      s.set('n', Number.NaN);
    });
    await trip(tether, cookie, (s) => {
      assert.equal((s.data as Record<string, unknown>).when, when.toISOString());
      assert.equal(s.get('n'), null);
    }, 'GET');
  });

  it('written data when the handler changes it after the commit then other requests still read what was stored', async () => {
    const { tether, cookie } = await seeded();
    let held: Partial<Cart> | undefined;
    await trip(tether, cookie, (s) => {
      s.set('n', 7);
      held = s.data;
    });
    held!.n = 8;
    held!.cart!.push({ sku: 'late', qty: 1 });
    await trip(tether, cookie, (s) => {
      assert.equal(s.get('n'), 7);
      assert.equal(s.data.cart!.length, 1);
    }, 'GET');
  });

  it('jsonEnvelope when given the data’s JSON text then gives what jsonCodec.encode gives, with or without a token and a user agent', () => {
    const d = { cart: [{ sku: 'é"\\' }], n: 1 };
    const every: Envelope = { d, c: 'a', u: 'b', r: 1, a: 5, n: '203.0.113.0/24', i: 7, h: 'Qm3x-handle_0123456789' };
    for (const env of [{ d }, { d, c: 'tok-en_0' }, { d, u: 'Mozilla/5.0 ("x"; \u2028 ☃)' }, { d, c: 'a', u: '' }, every] as Envelope[]) {
      assert.equal(jsonEnvelope(JSON.stringify(d), env), jsonCodec.encode(env));
    }
    assert.deepEqual(jsonCodec.decode(jsonCodec.encode(every)), every, 'every field read back, the session\u2019s handle too');
  });

  it('jsonExact when given plain JSON then copies it with its JSON text; when JSON would drop or change anything then refuses', () => {
    const plain = { a: [1, 'two', null, true, { b: -0.5 }], c: { d: {}, e: [] }, e: '', 10: 'ten', 2: ['\u2028', '\ud83d', '"\\'], '': -0, n: 1e21 };
    const exact = jsonExact(plain);
    assert.equal(exact?.text, JSON.stringify(plain));
    const copy = exact?.value;
    // What the text decodes to: -0 is written "0", and the copy holds 0.
    assert.deepEqual(copy, JSON.parse(JSON.stringify(plain)));
    assert.ok(Object.is(copy[''], 0));
    assert.notEqual(copy, plain);
    assert.notEqual(copy.a, plain.a);
    assert.equal(JSON.stringify(copy), JSON.stringify(plain));
    class Point { x = 1; }
    const sparse: unknown[] = [1];
    sparse[2] = 3;
    const refused: unknown[] = [
      { when: new Date(0) }, { u: undefined }, { n: Number.NaN }, { n: Infinity }, { p: new Point() },
      { s: sparse }, JSON.parse('{"__proto__":{"x":1}}'), { f: () => 1 }, { toJSON: () => 1 }, { m: new Map() }, { b: 10n },
    ];
    for (const value of refused) assert.equal(jsonExact(value)?.value, undefined, `refused: ${String(Object.keys(value as object))}`);
    const bare = jsonExact(Object.assign(Object.create(null) as object, { k: [1, { j: 'x' }] }));
    assert.deepEqual(bare?.value, { k: [1, { j: 'x' }] });
    assert.equal(bare?.text, '{"k":[1,{"j":"x"}]}');
  });
});
