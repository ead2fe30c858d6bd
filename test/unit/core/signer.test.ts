/** Cookie signing: `id.signature`, HMAC-SHA256; the first secret signs, every secret verifies. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Signer, safeEqual } from '../../../src/core/signer.js';
import { generateId } from '../../../src/core/ids.js';
import { SECRET_A, SECRET_B } from '../support.js';

describe('Signer', () => {
  it('sign when given an id then appends the HMAC-SHA256 of the id under the first secret', () => {
    const id = generateId();
    const mac = createHmac('sha256', SECRET_A).update(id).digest('base64url');
    assert.equal(new Signer([SECRET_A, SECRET_B]).sign(id), `${id}.${mac}`);
  });

  it('signature when keys are shorter, as long as or longer than a SHA-256 block, or multi-byte, then it equals createHmac for messages of every length', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const secrets = ['k', 'x'.repeat(31), 'y'.repeat(63), 'z'.repeat(64), 'w'.repeat(65), 'v'.repeat(200), 'é'.repeat(32), 'é'.repeat(33), '\u{1F511}'.repeat(20), SECRET_A];
    const messages = ['', 'a', 'é', '\u{1F600}x', 'x'.repeat(170), 'é'.repeat(171), '\u0800'.repeat(170), '\u0800'.repeat(171), 'x'.repeat(2000)];
    for (let n = 22; n <= 128; n++) {
      let id = '';
      for (let i = 0; i < n; i++) id += alphabet[(i * 7 + n) % 64];
      messages.push(id);
    }
    for (const secret of secrets) {
      const signer = new Signer([secret]);
      for (const m of messages) {
        assert.equal(signer.signature(m), createHmac('sha256', secret).update(m).digest('base64url'), `${secret.length} ${m.length}`);
      }
    }
    // Interleaved keys and lengths: nothing of one call is left over for the next.
    const a = new Signer([SECRET_A]);
    const b = new Signer([SECRET_B]);
    for (const m of [...messages].reverse()) {
      assert.equal(a.signature(m), createHmac('sha256', SECRET_A).update(m).digest('base64url'));
      assert.equal(b.signature(m), createHmac('sha256', SECRET_B).update(m).digest('base64url'));
    }
  });

  it('unsign when the value was signed with any listed secret then returns the id, stale unless the first signed it', () => {
    const id = generateId();
    const byOld = new Signer([SECRET_B]).sign(id);
    const rotated = new Signer([SECRET_A, SECRET_B]);
    const sigOf = (value: string) => value.slice(value.lastIndexOf('.') + 1);
    assert.deepEqual(rotated.unsign(byOld), { id, stale: true, signature: sigOf(byOld) });
    assert.deepEqual(rotated.unsign(rotated.sign(id)), { id, stale: false, signature: rotated.signature(id) });
    assert.equal(rotated.sign(id), `${id}.${rotated.signature(id)}`);
    assert.equal(new Signer([SECRET_A]).unsign(byOld), null, 'a dropped secret verifies nothing');
  });

  it('unsign when one byte is added, removed or changed then returns null', () => {
    const s = new Signer([SECRET_A]);
    const good = s.sign(generateId());
    const flip = (v: string, i: number): string => v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1);
    for (const bad of [good + 'x', good.slice(0, -1), flip(good, good.length - 1), flip(good, 0), good.replace('.', '..'),
      good.split('.')[0]!, '.' + good.split('.')[1], `${good.split('.')[0]}.${'A'.repeat(43)}`, '']) {
      assert.equal(s.unsign(bad), null, bad);
    }
  });

  it('unsign when the signature uses non-canonical base64url then returns null', () => {
    const s = new Signer([SECRET_A]);
    const [id, sig] = s.sign(generateId()).split('.') as [string, string];
    // The last character of a 43-char base64url string carries 2 unused bits; changing them decodes to the same bytes.
    const last = sig.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
    assert.equal(s.unsign(`${id}.${sig.slice(0, -1)}${twin}`), null);
    // Standard base64's '+' and '/' decode to the same bytes as base64url's '-' and '_'.
    let found = 0;
    for (let i = 0; i < 200 && found < 5; i++) {
      const [otherId, otherSig] = s.sign(generateId()).split('.') as [string, string];
      if (!/[-_]/.test(otherSig)) continue;
      found++;
      assert.equal(s.unsign(`${otherId}.${otherSig.replace(/-/g, '+').replace(/_/g, '/')}`), null);
      assert.equal(s.unsign(`${otherId}.${otherSig}`)?.id, otherId);
    }
    assert.equal(found, 5);
  });

  it('unsign when the signature holds characters outside base64url, of any UTF-8 width, then returns null', () => {
    const s = new Signer([SECRET_A]);
    const [id, sig] = s.sign(generateId()).split('.') as [string, string];
    for (const c of ['=', ' ', '\0', 'é', '\u0800', '\u{1F600}']) {
      assert.equal(s.unsign(`${id}.${c}${sig.slice(c.length)}`), null, JSON.stringify(c));
    }
  });
});

describe('safeEqual', () => {
  it('when texts differ anywhere, in length, by a trailing NUL or in multi-byte characters then false; equal texts true', () => {
    const token = generateId();
    const cases: Array<[string, string, boolean]> = [
      [token, token, true], ['', '', true], [token, token.slice(0, -1), false], [token.slice(0, -1), token, false],
      [token, token + '\0', false], ['x', 'x\0', false], ['\0', '', false], ['é', 'é', true], ['é', 'e', false],
      ['\u00e9', '\u00c3\u00a9', false], ['\u{1F600}', '\u{1F600}', true], ['\u{1F600}', '\u{1F601}', false],
      ['a'.repeat(64), 'a'.repeat(64), true], ['a'.repeat(65), 'a'.repeat(65), true], ['a'.repeat(65), 'a'.repeat(64) + 'b', false],
      ['a'.repeat(64), 'a'.repeat(65), false], ['\u0800'.repeat(64), '\u0800'.repeat(64), true], ['\u0800'.repeat(64), '\u0800'.repeat(63) + '\u0801', false],
    ];
    for (const [a, b, want] of cases) assert.equal(safeEqual(a, b), want, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    for (let i = 0; i < token.length; i++) {
      const changed = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
      assert.equal(safeEqual(token, changed), false, `position ${i}`);
    }
  });

  it('when a longer pair was compared before then a shorter equal pair still compares equal, and a shorter unequal one unequal', () => {
    // Two different long texts leave different bytes behind unless each check clears what it wrote.
    for (const [long1, long2] of [['aaaaaaaa', 'aaaaaaab'], ['a'.repeat(60), 'b'.repeat(60)], ['\u0800'.repeat(50), '\u0801'.repeat(50)]]) {
      assert.equal(safeEqual(long1!, long2!), false);
      assert.equal(safeEqual('a', 'a'), true);
      assert.equal(safeEqual(long2!, long1!), false);
      assert.equal(safeEqual('ab', 'ac'), false);
      assert.equal(safeEqual('', ''), true);
    }
  });
});
