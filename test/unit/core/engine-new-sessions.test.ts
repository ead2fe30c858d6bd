/** newSessions: limits on creating sessions, per client address and in total (SECURITY.md S47). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rig } from '../support.js';
import type { Rig } from '../support.js';
import type { Session, SessionData } from '../../../src/core/session.js';
import type { TetherOptions } from '../../../src/core/options.js';
import type { SharedLimiter } from '../../../src/core/rate-limit.js';

/** One request from `address`, running `fn`; the error code it failed with, or the cookie to send next. */
async function from(r: Rig, address: string | undefined, cookie: string | undefined, fn: (s: Session<SessionData>) => unknown): Promise<{ code: string | null; retryAfterSec?: number; cookie: string | undefined }> {
  const headers: Record<string, string | undefined> = { cookie };
  const session = await r.tether.open({ method: 'POST', header: (n) => headers[n], address: () => address });
  await fn(session);
  try {
    const set = (await r.tether.commit(session)).find((c) => c.startsWith('sid='))?.split(';')[0];
    return { code: null, cookie: set ?? cookie };
  } catch (err) {
    const e = err as { code: string; retryAfterSec?: number };
    return { code: e.code, retryAfterSec: e.retryAfterSec, cookie };
  }
}

const create = (r: Rig, address: string | undefined) => from(r, address, undefined, (s) => s.set('n', 1));

describe('limits on creating sessions (newSessions)', () => {
  it('new sessions from one address when past perAddress then RATE_LIMITED with Retry-After, nothing stored; other addresses, existing sessions and logins go on', async () => {
    const r = rig({ newSessions: { perAddress: 2, windowMs: 30_000 } });
    const first = await create(r, '203.0.113.1');
    assert.equal((await create(r, '203.0.113.1')).code, null);
    const refused = await create(r, '203.0.113.1');
    assert.equal(refused.code, 'RATE_LIMITED');
    assert.equal(refused.retryAfterSec, 30);
    assert.equal(await r.memory.count(), 2, 'the refused session was not stored');
    assert.equal((await create(r, '203.0.113.2')).code, null, 'another address has its own allowance');
    assert.equal((await from(r, '203.0.113.1', undefined, () => {})).code, null, 'a request that stores nothing is not counted');
    assert.equal((await from(r, '203.0.113.1', first.cookie, (s) => s.set('n', 2))).code, null, 'a write to an existing session is not counted');
    assert.equal((await from(r, '203.0.113.1', first.cookie, (s) => s.login('alice'))).code, null, 'nor a login that regenerates one');
    assert.equal((await create(r, undefined)).code, null, 'a request without an address is not counted per address');
    // A window later the allowance is back.
    r.clock.advance(60_001);
    assert.equal((await create(r, '203.0.113.1')).code, null);
  });

  it('new sessions from IPv6 addresses when in one /64 then they share one allowance, and an IPv4-mapped address counts as its IPv4 one', async () => {
    const r = rig({ newSessions: { perAddress: 1 } });
    assert.equal((await create(r, '2001:db8:1:2::1')).code, null);
    assert.equal((await create(r, '2001:db8:1:2::ffff')).code, 'RATE_LIMITED');
    assert.equal((await create(r, '2001:db8:1:3::1')).code, null);
    assert.equal((await create(r, '198.51.100.4')).code, null);
    assert.equal((await create(r, '::ffff:198.51.100.4')).code, 'RATE_LIMITED');
  });

  it('new sessions from many addresses when past total then RATE_LIMITED, the requests without an address counted too', async () => {
    const r = rig({ newSessions: { total: 3 } });
    const codes = [];
    for (const address of ['192.0.2.1', '192.0.2.2', undefined, '192.0.2.4']) codes.push((await create(r, address)).code);
    assert.deepEqual(codes, [null, null, null, 'RATE_LIMITED']);
  });

  it('newSessions with its own limiter when counting then asks it, by name, per address and in total', async () => {
    const asked: string[] = [];
    const limiter = (name: string, limit: number, windowMs: number): SharedLimiter => ({
      take: (key) => { asked.push(`${name} ${limit} ${windowMs} ${key}`); return true; },
      peek: () => true,
    });
    const r = rig({ newSessions: { perAddress: 5, total: 50, windowMs: 10_000, limiter } });
    await create(r, '2001:db8::7');
    assert.deepEqual(asked, ['tether.new-sessions 5 10000 2001:db8::/64', 'tether.new-sessions-total 50 10000 *']);
  });

  it('options when newSessions is malformed then OPTIONS_INVALID; when both limits are 0 then there are none', async () => {
    for (const bad of [{ newSessions: { perAddress: -1 } }, { newSessions: { total: 1.5 } }, { newSessions: { windowMs: 0 } }, { newSessions: { limiter: 'redis' } }, { newSessions: 5 }]) {
      assert.throws(() => rig(bad as unknown as TetherOptions), (err: { code?: string }) => err.code === 'OPTIONS_INVALID', JSON.stringify(bad));
    }
    const r = rig({ newSessions: { perAddress: 0, total: 0 } });
    assert.equal(r.tether.options.newSessions, null);
    for (let i = 0; i < 5; i++) assert.equal((await create(r, '203.0.113.9')).code, null);
  });
});
