/** Whole numbers as decimal text: `decimal(n)` is `String(n)` for every number. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decimal } from '../../../src/core/decimal.js';

/** A small seeded generator (mulberry32), so a failure names a reproducible number. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('decimal', () => {
  it('writes every magnitude of safe integer as String does', () => {
    const next = random(6);
    for (let digits = 1; digits <= 16; digits++) {
      for (let i = 0; i < 2_000; i++) {
        const n = Math.min(Number.MAX_SAFE_INTEGER, Math.floor(next() * 10 ** digits));
        assert.equal(decimal(n), String(n), `n = ${n}`);
      }
    }
  });

  it('is exact next to every multiple of 10^8, where the halves meet', () => {
    const next = random(7);
    const multiples = [1, 2, 9, 10, 99, 17_644_123, 90_071_992, 90_071_991];
    for (let i = 0; i < 5_000; i++) multiples.push(1 + Math.floor(next() * 90_071_991));
    for (const k of multiples) {
      for (const n of [k * 1e8 - 1, k * 1e8, k * 1e8 + 1, k * 1e8 + 99_999_999]) {
        if (Number.isSafeInteger(n)) assert.equal(decimal(n), String(n), `n = ${n}`);
      }
    }
    for (const n of [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 99_999_999, 100_000_000, 100_000_001, 1_764_412_345_678]) {
      assert.equal(decimal(n), String(n));
    }
  });

  it('leaves everything that is not a non-negative safe integer to String', () => {
    for (const n of [0, -0, -1, -1_764_412_345_678, 1.5, 1_764_412_345_678.25, 2 ** 53, 2 ** 53 + 2, 1e21, 1e-7, NaN, Infinity, -Infinity]) {
      assert.equal(decimal(n), String(n), `n = ${n}`);
    }
  });
});
