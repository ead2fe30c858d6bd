/** Verified cookies are remembered by digest: a returning cookie skips the HMAC, a changed one never does. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Signer } from '../../../src/core/signer.js';
import { generateId, hashId } from '../../../src/core/ids.js';
import { getHeapSnapshot } from 'node:v8';
import { readCookie } from '../../../src/core/cookie.js';
import { VerifiedCookies } from '../../../src/core/verified-cookies.js';
import type { VerifiedCookie } from '../../../src/core/verified-cookies.js';
import { SECRET_A, SECRET_B, rig, trip, valueOf } from '../support.js';

/** A signer that counts the full checks it makes. */
class CountingSigner extends Signer {
  unsigns = 0;
  override unsign(value: string) {
    this.unsigns++;
    return super.unsign(value);
  }
}

/** What a verification says of the cookie, without its holder. */
const fields = (v: VerifiedCookie | null) => v && { id: v.id, key: v.key, stale: v.stale };

describe('VerifiedCookies', () => {
  it('verify when a signed value comes back then returns the same id, store key and staleness as the first time', () => {
    const signer = new Signer([SECRET_A, SECRET_B]);
    const cache = new VerifiedCookies(signer);
    const id = generateId();
    const fresh = signer.sign(id);
    const old = new Signer([SECRET_B]).sign(id);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(fields(cache.verify(fresh)), { id, key: hashId(id), stale: false });
      assert.deepEqual(fields(cache.verify(old)), { id, key: hashId(id), stale: true });
    }
    assert.equal(cache.size, 2);
    assert.equal(cache.verify(fresh)!.holder, cache.verify(fresh)!.holder, 'one remembered value, one holder');
    assert.notEqual(cache.verify(fresh)!.holder, cache.verify(old)!.holder, 'each remembered value has its own');
  });

  it('sign when the engine issues a cookie then its first return skips the HMAC, and a changed copy still gets the full check', () => {
    const signer = new CountingSigner([SECRET_A]);
    const cache = new VerifiedCookies(signer);
    const id = generateId();
    const value = cache.sign(id, hashId(id));
    assert.equal(value, new Signer([SECRET_A]).sign(id), 'signed with the first secret, as the signer does');
    assert.deepEqual(fields(cache.verify(value)), { id, key: hashId(id), stale: false });
    assert.equal(signer.unsigns, 0);
    const other = generateId();
    assert.equal(cache.verify(`${other}${value.slice(value.indexOf('.'))}`), null, 'another ID under the remembered signature');
    assert.equal(signer.unsigns, 1);
  });

  it('verify when a remembered value is changed in any one character then refuses it', () => {
    const signer = new Signer([SECRET_A]);
    const cache = new VerifiedCookies(signer);
    const good = signer.sign(generateId());
    assert.ok(cache.verify(good));
    for (let i = 0; i < good.length; i++) {
      if (good[i] === '.') continue;
      const bad = good.slice(0, i) + (good[i] === 'A' ? 'B' : 'A') + good.slice(i + 1);
      assert.equal(cache.verify(bad), null, `changed at ${i}`);
    }
    assert.equal(cache.verify(good + 'x'), null);
    assert.equal(cache.verify('x' + good), null);
    // A dot in the signature, where the ID's dot would be for a shorter signature, or both.
    const dot = good.lastIndexOf('.');
    for (const at of [dot + 1, dot + 20, good.length - 1]) {
      assert.equal(cache.verify(`${good.slice(0, at)}.${good.slice(at + 1)}`), null, `a dot at ${at}`);
    }
    assert.equal(cache.verify(`${good.slice(0, dot)}x${good.slice(dot + 1, -1)}.`), null);
    assert.equal(cache.size, 1, 'refused values are never remembered');
  });

  it('verify when a remembered ID comes with its signature changed after the characters the cache files it under then refuses it from the cache and sends it to the full check', () => {
    const signer = new CountingSigner([SECRET_A]);
    const cache = new VerifiedCookies(signer);
    const id = generateId();
    const good = cache.sign(id, hashId(id));
    const dot = good.lastIndexOf('.');
    // The first eight characters of the signature choose the entry: these all find the remembered one.
    for (let i = dot + 9; i < good.length; i++) {
      const bad = good.slice(0, i) + (good[i] === 'A' ? 'B' : 'A') + good.slice(i + 1);
      assert.equal(cache.verify(bad), null, `changed at ${i}`);
    }
    assert.equal(signer.unsigns, good.length - dot - 9, 'each went through the signer');
    assert.ok(cache.verify(good));
    assert.equal(signer.unsigns, good.length - dot - 9, 'the value itself still comes from the cache');
  });

  it('verify when another engine signed with a secret this one does not hold then refuses it', () => {
    const cache = new VerifiedCookies(new Signer([SECRET_A]));
    assert.equal(cache.verify(new Signer([SECRET_B]).sign(generateId())), null);
    assert.equal(cache.size, 0);
  });

  it('verify when more values verify than the bound then keeps the bound, dropping the oldest', () => {
    const signer = new Signer([SECRET_A]);
    const cache = new VerifiedCookies(signer, 3);
    const values = Array.from({ length: 5 }, () => signer.sign(generateId()));
    for (const v of values) assert.ok(cache.verify(v));
    assert.equal(cache.size, 3);
    // Dropped entries still verify (through the full check) and come back in.
    assert.equal(cache.verify(values[0]!)?.id, values[0]!.split('.')[0]);
    assert.equal(cache.size, 3);
  });

  it('verify when given junk of any shape or length then refuses it', () => {
    const cache = new VerifiedCookies(new Signer([SECRET_A]));
    for (const junk of ['', '.', 'abc', `${'a'.repeat(200)}.${'b'.repeat(43)}`, `.${'b'.repeat(43)}`, 'x'.repeat(10_000)]) {
      assert.equal(cache.verify(junk), null, junk.slice(0, 20));
    }
    assert.equal(cache.size, 0);
  });
});

/** Every string reachable in this process (a heap snapshot collects garbage first). */
async function reachableStrings(): Promise<string[]> {
  let json = '';
  for await (const chunk of getHeapSnapshot()) json += chunk;
  return (JSON.parse(json) as { strings: string[] }).strings;
}

describe('VerifiedCookies and what a heap dump would show', () => {
  it('verify when cookies verified, by the signer or from the cache, then the cache keeps no cookie value and no ID, only the hashes of both', async () => {
    const signer = new Signer([SECRET_A]);
    const cache = new VerifiedCookies(signer);
    // Verified as the adapters do: a slice of a Cookie header. Only the IDs' first characters leave
    // this scope, to look for; no reference to the header, the value or the ID does.
    const probes = (() => {
      const out: Array<{ idStart: string; key: string; digest: string }> = [];
      for (let i = 0; i < 3; i++) {
        const id = generateId();
        const value = i === 2 ? cache.sign(id, hashId(id)) : signer.sign(id);
        const header = `theme=dark; sid=${value}; lang=en`;
        for (let k = 0; k < 2; k++) assert.equal(cache.verify(readCookie(header, 'sid')!)?.id, id);
        out.push({ idStart: id.slice(0, 16).split('').join(''), key: hashId(id), digest: hashId(value) });
      }
      return out;
    })();
    /[a-z]/.exec('overwrites the last match, which keeps the subject of the last regular expression run');
    const strings = await reachableStrings();
    for (const { idStart, key, digest } of probes) {
      assert.equal(strings.some((t) => t.includes(idStart) && t !== idStart), false, 'no string holding the ID (the cookie value, its header, the ID itself)');
      assert.ok(strings.includes(key) && strings.includes(digest), 'while the hashes of the ID and of the value are there');
    }
  });
});

describe('VerifiedCookies with a remembered signature', () => {
  it('verify when a remembered signature comes with another id then refuses it', () => {
    const signer = new Signer([SECRET_A]);
    const cache = new VerifiedCookies(signer);
    const good = signer.sign(generateId());
    assert.ok(cache.verify(good));
    const signature = good.slice(good.lastIndexOf('.') + 1);
    assert.equal(cache.verify(`${generateId()}.${signature}`), null);
    assert.equal(cache.verify(`${good.slice(0, good.lastIndexOf('.') - 1)}.${signature}`), null);
    assert.equal(cache.size, 1);
  });

  it('verify when two verified signatures share the number the cache files them under then each still verifies as itself, the later displacing the earlier', () => {
    // The number mixes a signature's first eight characters as n·31 + c: "Ba" and "CB" there give the
    // same one. Signatures of that shape do not come out of HMAC on demand, so this signer accepts any.
    class AcceptingSigner extends CountingSigner {
      override unsign(value: string) {
        this.unsigns++;
        const dot = value.lastIndexOf('.');
        return { id: value.slice(0, dot), stale: false, signature: value.slice(dot + 1) };
      }
    }
    const signer = new AcceptingSigner([SECRET_A]);
    const cache = new VerifiedCookies(signer);
    const signature = (pair: string) => `AAAAAA${pair}${'A'.repeat(35)}`;
    const [idA, idB] = [generateId(), generateId()];
    const a = `${idA}.${signature('Ba')}`;
    const b = `${idB}.${signature('CB')}`;
    const expect = (value: string, id: string, checks: number) => {
      assert.deepEqual(fields(cache.verify(value)), { id, key: hashId(id), stale: false });
      assert.equal(signer.unsigns, checks);
    };
    expect(a, idA, 1);
    expect(a, idA, 1);
    expect(b, idB, 2);
    expect(b, idB, 2);
    assert.equal(cache.size, 1, 'one place for both');
    expect(a, idA, 3);
    assert.equal(cache.verify(`${idB}.${signature('Ba')}`)?.id, idB, 'a remembered signature with another ID: the full check decides');
    assert.equal(signer.unsigns, 4);
  });
});

describe('Engine and verified cookies', () => {
  it('engine when sessions were created, read, written and logged in then a heap snapshot holds no string with any of their IDs', async () => {
    const r = rig({ csrf: false });
    // Only the IDs' first characters leave this scope, to look for.
    const idStarts = await (async () => {
      const out: string[] = [];
      const remember = (cookie: string | undefined) => out.push(valueOf(cookie!).slice(0, 16).split('').join(''));
      for (let i = 0; i < 3; i++) {
        const made = await trip(r.tether, undefined, (s) => s.set('n', i));
        remember(made.cookie);
        await trip(r.tether, made.cookie, (s) => assert.equal(s.get('n'), i), 'GET');
        await trip(r.tether, made.cookie, (s) => s.set('n', i + 1));
        const login = await trip(r.tether, made.cookie, (s) => s.login(`user-${i}`));
        remember(login.cookie);
        await trip(r.tether, login.cookie, (s) => assert.equal(s.get('n'), i + 1), 'GET');
      }
      return out;
    })();
    /[a-z]/.exec('overwrites the last match, which keeps the subject of the last regular expression run');
    const strings = await reachableStrings();
    assert.equal(idStarts.length, 6);
    for (const start of idStarts) assert.equal(strings.some((t) => t.includes(start) && t !== start), false, start);
    assert.ok(r.tether.stats().verifiedCookies >= 3, 'while their cookies are remembered as verified');
  });

  it('cookie of a new session when issued then is not remembered; once it returns, and when a login regenerates the session, it is', async () => {
    const r = rig();
    const first = await trip(r.tether, undefined, (s) => s.set('a', 1));
    assert.equal(r.tether.stats().verifiedCookies, 0, 'a new session’s cookie waits for its first return');
    const back = await trip(r.tether, first.cookie, (s) => assert.equal(s.get('a'), 1), 'GET');
    assert.equal(back.session.isNew, false);
    assert.equal(r.tether.stats().verifiedCookies, 1, 'verified on its return, then remembered');
    const login = await trip(r.tether, first.cookie, (s) => s.login('alice'));
    assert.notEqual(login.cookie, first.cookie);
    assert.equal(r.tether.stats().verifiedCookies, 2, 'the regenerated session’s cookie is remembered when issued');
    const after = await trip(r.tether, login.cookie, (s) => assert.equal(s.get('a'), 1), 'GET');
    assert.equal(after.session.userId, 'alice');
    assert.equal(r.tether.stats().verifiedCookies, 2);
  });
});
