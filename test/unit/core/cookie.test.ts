/** The session cookie's Set-Cookie values: attributes serialised once by `cookie`, identical to serialising each time. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serialize } from 'cookie';
import { SessionCookie, readCookie } from '../../../src/core/cookie.js';
import { Signer } from '../../../src/core/signer.js';
import { generateId } from '../../../src/core/ids.js';
import type { ResolvedCookie } from '../../../src/core/options.js';
import { rig, trip, SECRET_A } from '../support.js';

const variants: ResolvedCookie[] = [
  { name: 'sid', path: '/', domain: undefined, sameSite: 'lax', secure: false, httpOnly: true, maxAgeMs: undefined },
  { name: '__Host-sid', path: '/', domain: undefined, sameSite: 'strict', secure: true, httpOnly: true, maxAgeMs: 86_400_000 },
  { name: 'app', path: '/shop/cart', domain: 'shop.example', sameSite: 'none', secure: true, httpOnly: true, maxAgeMs: 1_500 },
];

describe('SessionCookie', () => {
  for (const opts of variants) {
    it(`set-cookie for ${opts.name} (${opts.sameSite}, secure ${opts.secure}, max-age ${opts.maxAgeMs}) then is what cookie.serialize gives`, () => {
      const c = new SessionCookie(opts);
      const common = { path: opts.path, domain: opts.domain, sameSite: opts.sameSite, secure: opts.secure, httpOnly: true } as const;
      const value = new Signer([SECRET_A]).sign(generateId());
      assert.equal(c.set(value), serialize(opts.name, value, {
        ...common, maxAge: opts.maxAgeMs === undefined ? undefined : Math.floor(opts.maxAgeMs / 1000), encode: (v) => v,
      }));
      assert.equal(c.clear, serialize(opts.name, '', { ...common, expires: new Date(0), maxAge: 0 }));
      assert.equal(readCookie(c.set(value).split(';')[0], opts.name), value, 'reads back as the value it carries');
    });
  }

  it('options cookie would refuse then fail when the engine is built, not on a request', () => {
    assert.throws(() => new SessionCookie({ ...variants[0]!, path: '/a;b' }), TypeError);
    assert.throws(() => new SessionCookie({ ...variants[0]!, domain: 'bad domain' }), TypeError);
  });
});

describe('readCookie', () => {
  const cases: Array<[string, string | undefined, string]> = [
    ['sid=a.b', 'a.b', 'the only pair'],
    ['x=1; sid=a.b; y=2', 'a.b', 'among others'],
    ['sid=first; sid=second', 'first', 'the first of duplicates'],
    ['sid =forged; sid=a.b', 'a.b', 'a name with a trailing space is another cookie'],
    ['sid\t=forged', undefined, 'a name with a trailing tab is another cookie'],
    ['SID=x; __HOST-sid=y; xsid=z; sid2=w; sidx=v', undefined, 'names that contain or resemble it'],
    ['x=1;sid=a.b', 'a.b', 'no space after the separator'],
    ['x=1;  \tsid= a.b \t', 'a.b', 'blanks around the pair'],
    ['sid=; sid=a.b', undefined, 'an empty first value (the first decides)'],
    ['sid; sid=a.b', 'a.b', 'a pair without "=" is skipped'],
    ['sid=a%2Eb', 'a%2Eb', 'values are not decoded'],
    ['', undefined, 'an empty header'],
  ];
  for (const [header, expected, label] of cases) {
    it(`header when ${label} then reads ${expected === undefined ? 'nothing' : expected}`, () => {
      assert.equal(readCookie(header, 'sid'), expected);
    });
  }
});

describe('custom generateId', () => {
  it('ids when well-formed then are the ones the cookie carries', async () => {
    let n = 0;
    const ids = Array.from({ length: 3 }, (_, i) => `custom-id-${i}-${'x'.repeat(24)}`);
    const r = rig({ generateId: () => ids[n++]! });
    const first = await trip(r.tether, undefined, (s) => s.set('a', 1));
    assert.equal(first.session.id, ids[0]);
    const again = await trip(r.tether, first.cookie, (s) => s.regenerate());
    assert.equal(again.session.id, ids[1]);
    const back = await trip(r.tether, again.cookie, (s) => assert.equal(s.get('a'), 1), 'GET');
    assert.equal(back.session.isNew, false);
  });

  for (const [label, bad] of [['too short', 'short'], ['not base64url', `has;semicolon=${'x'.repeat(24)}`], ['not a string', 42]] as const) {
    it(`ids when ${label} then the commit fails OPTIONS_INVALID and nothing is stored`, async () => {
      const r = rig({ generateId: () => bad as string });
      const s = await r.tether.open({ method: 'POST', header: () => undefined });
      s.set('a', 1);
      await assert.rejects(r.tether.commit(s), { code: 'OPTIONS_INVALID' });
      assert.equal(await r.memory.count(), 0);
    });

    it(`ids when ${label} then regenerate() throws OPTIONS_INVALID and the session keeps its ID`, async () => {
      let calls = 0;
      const r = rig({ generateId: () => (calls++ === 0 ? `first-good-id-${'x'.repeat(24)}` : bad as string) });
      const first = await trip(r.tether, undefined, (s) => s.set('a', 1));
      const s = await r.tether.open({ method: 'POST', header: (n) => (n === 'cookie' ? first.cookie : undefined) });
      assert.throws(() => s.regenerate(), { code: 'OPTIONS_INVALID' });
      assert.equal(s.id, first.session.id);
      assert.deepEqual(await r.tether.commit(s), [], 'nothing to write: the failed regenerate left no intent behind');
      const back = await trip(r.tether, first.cookie, (x) => assert.equal(x.get('a'), 1), 'GET');
      assert.equal(back.session.id, first.session.id);
    });

    it(`ids when ${label} then login() throws OPTIONS_INVALID and binds no user to the old ID, even when the app goes on and commits`, async () => {
      let calls = 0;
      const r = rig({ generateId: () => (calls++ === 0 ? `first-good-id-${'x'.repeat(24)}` : bad as string) });
      // A session whose cookie someone else may have planted in this browser.
      const planted = await trip(r.tether, undefined, (s) => s.set('a', 1));
      const s = await r.tether.open({ method: 'POST', header: (n) => (n === 'cookie' ? planted.cookie : undefined) });
      assert.throws(() => s.login('alice'), { code: 'OPTIONS_INVALID' });
      assert.equal(s.userId, null);
      assert.equal(s.id, planted.session.id);
      await r.tether.commit(s);
      const back = await trip(r.tether, planted.cookie, () => {}, 'GET');
      assert.equal(back.session.userId, null, 'the planted cookie opens no signed-in session');
      assert.deepEqual(await r.tether.listUserSessions('alice'), []);
    });
  }
});
