/** Session IDs: 256 random bits, base64url, unique; store keys are their SHA-256. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { generateId, hashId, handleOf, isWellFormedId, randomToken } from '../../../src/core/ids.js';
import { rig, trip, cookiePair, valueOf } from '../support.js';

describe('session ids', () => {
  it('generateId when harvested 10,000 times then gives no duplicates, each 43 base64url characters of 32 bytes', () => {
    const seen = new Set<string>();
    const ones = new Array<number>(256).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const id = generateId();
      assert.match(id, /^[A-Za-z0-9_-]{43}$/);
      const bytes = Buffer.from(id, 'base64url');
      assert.equal(bytes.length, 32);
      for (let b = 0; b < 256; b++) ones[b]! += (bytes[b >> 3]! >> (b & 7)) & 1;
      seen.add(id);
    }
    assert.equal(seen.size, 10_000);
    // Bit frequency (WSTG-SESS-01): every bit position is set about half the time (5000 ± 6 sigma = 300).
    for (const n of ones) assert.ok(Math.abs(n - 5000) < 300, `bit frequency ${n} of 10000 is not random-looking`);
  });

  it('randomToken when drawn across many refills of its pool, interleaved with ids, then never repeats a value', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      for (const v of [randomToken(), generateId(), randomToken()]) {
        assert.equal(Buffer.from(v, 'base64url').length, 32);
        seen.add(v);
      }
    }
    assert.equal(seen.size, 15_000);
  });

  it('engine when 1,000 sessions are created then issues 1,000 distinct 43-character ids in the cookies', async () => {
    const { tether } = rig();
    const ids = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const t = await trip(tether, undefined, (s) => s.set('n', i));
      const id = valueOf(cookiePair(t.setCookies)!).split('.')[0]!;
      assert.match(id, /^[A-Za-z0-9_-]{43}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 1_000);
  });

  it('hashId when given an id then returns its SHA-256 in base64url, not the id', () => {
    const id = generateId();
    assert.equal(hashId(id), createHash('sha256').update(id).digest('base64url'));
    assert.notEqual(hashId(id), id);
    assert.notEqual(handleOf(hashId(id)), hashId(id));
  });

  it('isWellFormedId when given junk then refuses it before any lookup', () => {
    for (const bad of ["' OR 1=1--", '{"$ne":null}', '../../etc/passwd', 'short', 'x'.repeat(129), 'a'.repeat(30) + '%']) {
      assert.equal(isWellFormedId(bad), false, bad);
    }
    assert.equal(isWellFormedId(generateId()), true);
  });
});
