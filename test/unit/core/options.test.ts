/** Engine options: validated once at construction, unsafe combinations refused, defaults in one place. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { createTether } from '../../../src/core/engine.js';
import { resolveOptions, TETHER_DEFAULTS } from '../../../src/core/options.js';
import type { TetherOptions } from '../../../src/core/options.js';
import { SECRET_A, SECRET_B } from '../support.js';

const invalid = (options: unknown, message: RegExp): void => {
  assert.throws(() => createTether(options as TetherOptions), { code: 'OPTIONS_INVALID', message });
};

/** The process warnings `fn` raises (delivered on the next turn, so collected past it). */
async function warningsOf(fn: () => void): Promise<Array<Error & { code?: string }>> {
  const seen: Array<Error & { code?: string }> = [];
  const onWarning = (w: Error & { code?: string }): void => void seen.push(w);
  process.on('warning', onWarning);
  try {
    fn();
    await new Promise((resolve) => setImmediate(resolve));
    return seen;
  } finally {
    process.off('warning', onWarning);
  }
}

describe('engine options', () => {
  it('options when a key is unknown then construction throws OPTIONS_INVALID naming it', () => {
    invalid({ secrets: [SECRET_A], idleTimeout: 5 }, /options\.idleTimeout is not an option/);
    invalid({ secrets: [SECRET_A], cookie: { sameSite: 'lax', httpOnly: false } }, /options\.cookie\.httpOnly is not an option/);
    invalid({ secrets: [SECRET_A], csrf: { origin: 'https://a.example' } }, /options\.csrf\.origin is not an option/);
    invalid({ secrets: [SECRET_A], csrf: { form: true } }, /options\.csrf\.form is not an option \(known: .*forms/);
    // Names every object inherits are not options either, nor is a JSON `__proto__` key.
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
      invalid({ secrets: [SECRET_A], ...JSON.parse(`{"${name}": 1}`) as object }, new RegExp(`options\\.${name} is not an option`));
      invalid({ secrets: [SECRET_A], cookie: JSON.parse(`{"${name}": 1}`) as object }, new RegExp(`options\\.cookie\\.${name} is not an option`));
    }
    assert.throws(() => new MemoryStore(JSON.parse('{"hasOwnProperty": 1}') as object), { code: 'OPTIONS_INVALID' });
  });

  it('options when a value has the wrong type then construction throws OPTIONS_INVALID saying what was expected', () => {
    invalid({ secrets: [SECRET_A], idleTimeoutMs: '600000' }, /idleTimeoutMs must be a positive integer/);
    invalid({ secrets: [SECRET_A], idleTimeoutMs: 0 }, /idleTimeoutMs must be a positive integer/);
    invalid({ secrets: [SECRET_A], maxSessionBytes: 1.5 }, /maxSessionBytes must be a positive integer/);
    invalid({ secrets: [SECRET_A], production: 'yes' }, /production must be a boolean/);
    invalid({ secrets: [SECRET_A], cookie: { sameSite: 'loose' } }, /sameSite must be one of "lax", "strict", "none"/);
    invalid({ secrets: [SECRET_A], cookie: 'sid' }, /options\.cookie must be an object/);
    invalid({ secrets: [SECRET_A], csrf: true }, /csrf must be false or an object/);
    invalid({ secrets: [SECRET_A], csrf: { forms: 'yes' } }, /csrf\.forms must be a boolean/);
    invalid({ secrets: [SECRET_A], csrf: { forms: true, formField: '' } }, /csrf\.formField must be a non-empty string/);
    invalid({ secrets: [SECRET_A], store: {} }, /store must be a SessionStore/);
    invalid({ secrets: [SECRET_A], clock: Date }, /clock must be an object with a now\(\) method/);
    invalid({ secrets: 42 }, /secrets must be a string or a non-empty array of strings/);
    invalid({ secrets: [] }, /secrets must be a string or a non-empty array of strings/);
  });

  it('secrets when one is shorter than 32 characters then construction throws OPTIONS_INVALID', () => {
    invalid({ secrets: 'short' }, /at least 32 characters/);
    invalid({ secrets: [SECRET_A, 'x'.repeat(31)] }, /at least 32 characters/);
    assert.doesNotThrow(() => createTether({ secrets: SECRET_A.slice(0, 32) }));
  });

  it('secrets when one is a repeated character or word then production refuses it with OPTIONS_INVALID, never quoting it; random ones pass', () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    for (const weak of ['x'.repeat(32), 'secret'.repeat(6), 'changeme'.repeat(4), 'password'.repeat(4), `${'ab'.repeat(20)}`]) {
      assert.throws(() => resolveOptions({ production: true, secrets: [SECRET_A, weak], store }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'OPTIONS_INVALID');
        assert.match(err.message, /different characters is a repeated pattern/);
        assert.ok(!err.message.includes(weak.slice(0, 8)), 'the secret is not in the message');
        return true;
      });
      assert.doesNotThrow(() => resolveOptions({ production: false, secrets: weak }), 'accepted outside production');
    }
    // Random secrets in the usual encodings, many times over: never refused.
    for (let i = 0; i < 2_000; i++) {
      for (const random of [randomBytes(16).toString('hex'), randomBytes(32).toString('base64url'), randomBytes(24).toString('base64')]) {
        assert.doesNotThrow(() => resolveOptions({ production: true, secrets: random, store }));
      }
    }
  });

  it('production when no secret is given then construction throws OPTIONS_INVALID', () => {
    invalid({ production: true }, /secrets is required in production/);
  });

  it('no secret outside production then one is generated with a TETHER_SECRET_GENERATED warning', async () => {
    const seen = await warningsOf(() => createTether({ production: false }));
    assert.deepEqual(seen.map((w) => w.code), ['TETHER_SECRET_GENERATED']);
  });

  it('secrets outside production when one is a repeated pattern then a TETHER_WEAK_SECRET warning names its position, never the secret', async () => {
    const weak = 'changeme'.repeat(4);
    const seen = await warningsOf(() => {
      createTether({ production: false, secrets: [SECRET_A, weak] });
      createTether({ production: false, secrets: [weak, 'x'.repeat(40)] });
      createTether({ production: false, secrets: [SECRET_A, SECRET_B] });
      createTether({ production: false });
    });
    const weakWarnings = seen.filter((w) => w.code === 'TETHER_WEAK_SECRET');
    assert.deepEqual(weakWarnings.map((w) => w.message.match(/secrets? ([\d, ]+) of (\d+)/)?.slice(1)), [['2', '2'], ['1, 2', '2']]);
    for (const w of weakWarnings) {
      assert.match(w.message, /refused in production; generate one with npx tether secret/);
      assert.ok(!w.message.includes('changeme') && !w.message.includes('xxxx'), 'the secret is not quoted');
    }
  });

  it('production when cookie.secure is set to false then a TETHER_INSECURE_COOKIE warning is emitted, and none by default', async () => {
    const seen = await warningsOf(() => {
      createTether({ production: true, secrets: [SECRET_A], store: new MemoryStore(), cookie: { secure: false } });
      createTether({ production: true, secrets: [SECRET_A], store: new MemoryStore() });
      createTether({ production: false, secrets: [SECRET_A], cookie: { secure: false } });
    });
    assert.deepEqual(seen.map((w) => w.code).filter((c) => c === 'TETHER_INSECURE_COOKIE'), ['TETHER_INSECURE_COOKIE']);
  });

  it('cookie when sameSite is none without secure then construction throws OPTIONS_INVALID', () => {
    invalid({ secrets: [SECRET_A], cookie: { sameSite: 'none' } }, /sameSite "none" needs options\.cookie\.secure true/);
    assert.doesNotThrow(() => createTether({ secrets: [SECRET_A], cookie: { sameSite: 'none', secure: true } }));
  });

  it('cookie name, path or domain when they hold separators or CR/LF then construction throws OPTIONS_INVALID', () => {
    invalid({ secrets: [SECRET_A], cookie: { name: 'sid;Domain=evil' } }, /cookie\.name must be an RFC 6265 token/);
    invalid({ secrets: [SECRET_A], cookie: { name: 'sid\r\nSet-Cookie: x=1' } }, /cookie\.name/);
    invalid({ secrets: [SECRET_A], cookie: { path: '/;SameSite=None' } }, /cookie\.path contains/);
    invalid({ secrets: [SECRET_A], cookie: { domain: 'shop.example\r\n' } }, /cookie\.domain contains/);
    invalid({ secrets: [SECRET_A], cookie: { name: '__Host-sid', secure: true, domain: 'shop.example' } }, /__Host- prefix needs secure, path "\/" and no domain/);
    invalid({ secrets: [SECRET_A], cookie: { name: '__Secure-sid' } }, /__Secure- prefix needs secure/);
  });

  it('cookie maxAgeMs when longer than the absolute timeout then construction throws OPTIONS_INVALID (S14)', () => {
    invalid({ secrets: [SECRET_A], absoluteTimeoutMs: 3_600_000, cookie: { maxAgeMs: 30 * 86_400_000 } }, /maxAgeMs \(2592000000\) is longer than absoluteTimeoutMs \(3600000\)/);
    invalid({ secrets: [SECRET_A], cookie: { maxAgeMs: 12 * 3_600_000 + 1 } }, /longer than absoluteTimeoutMs \(43200000\)/);
    assert.equal(createTether({ secrets: [SECRET_A], absoluteTimeoutMs: 3_600_000, cookie: { maxAgeMs: 3_600_000 } }).options.cookie.maxAgeMs, 3_600_000);
  });

  it('cookie maxAgeMs when under one second then construction throws OPTIONS_INVALID (Max-Age=0 would delete the cookie)', () => {
    invalid({ secrets: [SECRET_A], cookie: { maxAgeMs: 1 } }, /cookie\.maxAgeMs \(1\) is under 1000/);
    invalid({ secrets: [SECRET_A], cookie: { maxAgeMs: 999 } }, /cookie\.maxAgeMs \(999\) is under 1000.*Max-Age=0/);
    const tether = createTether({ secrets: [SECRET_A], cookie: { maxAgeMs: 1000 } });
    assert.equal(tether.options.cookie.maxAgeMs, 1000);
  });

  it('touchIntervalMs when not shorter than idleTimeoutMs then construction throws OPTIONS_INVALID naming both', () => {
    invalid({ secrets: [SECRET_A], idleTimeoutMs: 60_000, touchIntervalMs: 60_000 },
      /options\.touchIntervalMs \(60000\) must be shorter than options\.idleTimeoutMs \(60000\)/);
    invalid({ secrets: [SECRET_A], idleTimeoutMs: 60_000, touchIntervalMs: 90_000 }, /touchIntervalMs \(90000\).*idleTimeoutMs \(60000\)/);
    // Only the interval given: it is compared with the default idle timeout, and the message says so.
    invalid({ secrets: [SECRET_A], touchIntervalMs: TETHER_DEFAULTS.idleTimeoutMs },
      /touchIntervalMs \(1800000\) must be shorter than options\.idleTimeoutMs \(1800000, the default\)/);
    assert.equal(resolveOptions({ secrets: [SECRET_A], idleTimeoutMs: 60_000, touchIntervalMs: 59_999 }).touchIntervalMs, 59_999);
    assert.equal(resolveOptions({ secrets: [SECRET_A], idleTimeoutMs: 60_000, touchIntervalMs: 0 }).touchIntervalMs, 0);
    assert.equal(resolveOptions({ secrets: [SECRET_A], touchIntervalMs: TETHER_DEFAULTS.idleTimeoutMs - 1 }).touchIntervalMs, TETHER_DEFAULTS.idleTimeoutMs - 1);
    // Only the idle timeout given: the derived interval stays under it, down to the shortest idle timeouts.
    for (const idleTimeoutMs of [1, 9, 10, 1_000, 600_000, 86_400_000]) {
      const o = resolveOptions({ secrets: [SECRET_A], idleTimeoutMs });
      assert.ok(o.touchIntervalMs < o.idleTimeoutMs, `idle ${idleTimeoutMs}: touch ${o.touchIntervalMs}`);
    }
  });

  it('gateTimeoutMs or storeTimeoutMs when over 2^31 - 1 ms then construction throws OPTIONS_INVALID (a timer would fire at once)', () => {
    for (const key of ['gateTimeoutMs', 'storeTimeoutMs'] as const) {
      invalid({ secrets: [SECRET_A], [key]: 2_147_483_648 }, new RegExp(`options\\.${key} must be a positive integer of milliseconds, at most 2147483647`));
      invalid({ secrets: [SECRET_A], [key]: 30 * 86_400_000 }, new RegExp(`${key} must be .*at most 2147483647`));
      invalid({ secrets: [SECRET_A], [key]: 0 }, new RegExp(`${key} must be a positive integer`));
      assert.equal(resolveOptions({ secrets: [SECRET_A], [key]: 2_147_483_647 })[key], 2_147_483_647);
    }
    // Durations that never reach a timer keep their range: a user context may live for months.
    assert.equal(resolveOptions({ secrets: [SECRET_A], userContextTtlMs: 365 * 86_400_000 }).userContextTtlMs, 365 * 86_400_000);
    assert.equal(resolveOptions({ secrets: [SECRET_A], idleTimeoutMs: 40 * 86_400_000, absoluteTimeoutMs: 40 * 86_400_000 }).idleTimeoutMs, 40 * 86_400_000);
  });

  it('cookie defaults when not production then sid, HttpOnly, SameSite=Lax, Path=/, not Secure', () => {
    const o = resolveOptions({ secrets: [SECRET_A], production: false });
    assert.deepEqual({ ...o.cookie }, { name: 'sid', path: '/', domain: undefined, sameSite: 'lax', secure: false, httpOnly: true, maxAgeMs: undefined });
  });

  it('cookie defaults when production or secure then Secure and the __Host- prefix', () => {
    assert.equal(resolveOptions({ secrets: [SECRET_A], production: true }).cookie.name, '__Host-sid');
    assert.equal(resolveOptions({ secrets: [SECRET_A], production: true }).cookie.secure, true);
    assert.equal(resolveOptions({ secrets: [SECRET_A], cookie: { secure: true } }).cookie.name, '__Host-sid');
    assert.equal(resolveOptions({ secrets: [SECRET_A], cookie: { secure: true, path: '/app' } }).cookie.name, 'sid', 'no __Host- where it would be refused');
  });

  it('options when resolved then come out frozen, with the documented defaults, and the caller object untouched', () => {
    const input: TetherOptions = { secrets: [SECRET_A, SECRET_B], cookie: { sameSite: 'strict' } };
    const copy = structuredClone(input);
    const o = resolveOptions(input);
    assert.deepEqual(input, copy);
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.cookie) && Object.isFrozen(o.secrets));
    assert.equal(o.idleTimeoutMs, TETHER_DEFAULTS.idleTimeoutMs);
    assert.equal(o.absoluteTimeoutMs, TETHER_DEFAULTS.absoluteTimeoutMs);
    assert.equal(o.maxSessionBytes, 65_536);
    assert.equal(o.storeTimeoutMs, 2_000);
    assert.equal(o.touchIntervalMs, 60_000);
    assert.equal(resolveOptions({ secrets: [SECRET_A], idleTimeoutMs: 100_000 }).touchIntervalMs, 10_000);
    assert.deepEqual(o.csrf, { header: 'x-csrf-token', origins: undefined, requireOrigin: false, secureOrigins: false, jsonOnly: true, forms: false, formField: '_csrf' });
  });

  it('clearSiteData when given then it becomes the header value; an unknown or empty list is OPTIONS_INVALID (S16)', () => {
    assert.equal(resolveOptions({ secrets: [SECRET_A] }).clearSiteData, null, 'off by default');
    assert.equal(resolveOptions({ secrets: [SECRET_A], clearSiteData: false }).clearSiteData, null);
    assert.equal(resolveOptions({ secrets: [SECRET_A], clearSiteData: true }).clearSiteData, '"cache", "storage"');
    assert.equal(resolveOptions({ secrets: [SECRET_A], clearSiteData: ['*'] }).clearSiteData, '"*"');
    assert.equal(resolveOptions({ secrets: [SECRET_A], clearSiteData: ['cookies', 'executionContexts'] }).clearSiteData, '"cookies", "executionContexts"');
    invalid({ secrets: [SECRET_A], clearSiteData: ['cache', 'history'] }, /clearSiteData must be true, false or a non-empty list of 'cache'/);
    invalid({ secrets: [SECRET_A], clearSiteData: [] }, /clearSiteData must be/);
    invalid({ secrets: [SECRET_A], clearSiteData: '"cache"' }, /clearSiteData must be/);
    invalid({ secrets: [SECRET_A], clearSiteData: ['"cache"\r\nSet-Cookie: x=1'] }, /clearSiteData must be/);
  });

  it('csrf.origins when one is not an http or https origin then construction throws, else they are normalised', () => {
    invalid({ secrets: [SECRET_A], csrf: { origins: ['not a url'] } }, /is not an origin/);
    // Their origin is "null", which the check never lets through: every request would be refused.
    for (const origin of ['chrome-extension://abcdefghijklmnop', 'file:///tmp/x', 'data:text/plain,x']) {
      invalid({ secrets: [SECRET_A], csrf: { origins: [origin] } }, /is not an http or https origin/);
    }
    const o = resolveOptions({ secrets: [SECRET_A], csrf: { origins: ['https://Shop.Example:443/path'] } });
    assert.deepEqual(o.csrf && o.csrf.origins, ['https://shop.example']);
  });

  it('csrf.header when not a header name a request can carry then construction throws; a token is lower-cased', () => {
    for (const header of ['x csrf token', 'x-csrf:token', 'x-csrf\r\nx', 'jeton-é']) {
      invalid({ secrets: [SECRET_A], csrf: { header } }, /csrf\.header must be a header name/);
    }
    const csrf = resolveOptions({ secrets: [SECRET_A], csrf: { header: 'X-My_Token.1' } }).csrf;
    assert.equal(csrf && csrf.header, 'x-my_token.1');
  });
});
