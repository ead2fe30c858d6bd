/**
 * Type test: `createTether<T>()` types the session's data bag. This file must type-check; each
 * `@ts-expect-error` fails compilation if the error it expects goes away (say, `data` became `any`).
 * `npm test` type-checks it (tsc over src and test) before any test runs; the runtime case below only
 * shows that the typed calls do what they say.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTether } from '../../../src/index.js';
import type { Session } from '../../../src/index.js';
import { view, SECRET_A } from '../support.js';

interface Shop {
  cart: string[];
  visits: number;
}

/** Typed use of a session; the lines marked @ts-expect-error are the wrong uses the compiler must refuse. */
async function typedUse(): Promise<Session<Shop>> {
  const tether = createTether<Shop>({ secrets: [SECRET_A] });
  const s: Session<Shop> = await tether.open(view('GET'));
  const cart: string[] | undefined = s.data.cart;
  s.data.cart = [...(cart ?? []), 'apple'];
  s.set('visits', 1);
  const visits: number | undefined = s.get('visits');
  await s.update((d) => {
    d.cart?.push('pear');
    d.visits = (visits ?? 0) + 1;
    if (d.visits > 100) {
      // @ts-expect-error visits is a number
      d.visits = 'many';
    }
  });
  if (s.isNew && s.destroyed) {
    // Never runs: wrong uses, kept for the compiler.
    // @ts-expect-error cart holds strings
    s.data.cart = [1];
    // @ts-expect-error no such key in Shop
    s.data.wishlist = [];
    // @ts-expect-error set checks the value type
    s.set('visits', 'one');
    // @ts-expect-error set checks the key
    s.set('wishlist', []);
    // @ts-expect-error get returns the declared type
    const wrong: number | undefined = s.get('cart');
    void wrong;
    s.login('ada', { keep: ['cart'] });
    // @ts-expect-error keep names keys of the data
    s.login('ada', { keep: ['wishlist'] });
    const at: number | null = s.authenticatedAt;
    // @ts-expect-error authenticatedAt may be null
    const sure: number = s.authenticatedAt;
    void at;
    void sure;
    // @ts-expect-error requireRecentAuth takes milliseconds
    assert.throws(() => s.requireRecentAuth('15m'), TypeError);
  }
  return s;
}

describe('typed session data', () => {
  it('createTether<Shop> when its typed session is used then the values round-trip as typed', async () => {
    const s = await typedUse();
    assert.deepEqual(s.get('cart'), ['apple', 'pear']);
    assert.equal(s.get('visits'), 2);
  });
});
