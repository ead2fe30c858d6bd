/** addressChange: the network a session was last seen from, compared and reported (SECURITY.md S33). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientNetwork, networkOf } from '../../../src/core/network.js';
import { rig } from '../support.js';
import type { Rig } from '../support.js';
import type { Session, SessionData } from '../../../src/core/session.js';
import type { TetherOptions } from '../../../src/core/options.js';
import { Tether } from '../../../src/core/engine.js';

/** One request from `address` (undefined: the adapter knows none), running `fn`; the cookie to send next. */
async function from(r: Rig, address: string | undefined, cookie: string | undefined, fn: (s: Session<SessionData>) => unknown = () => {}, method = 'GET'): Promise<{ session: Session<SessionData>; cookie: string | undefined }> {
  const headers: Record<string, string | undefined> = { cookie, 'user-agent': 'browser/1.0' };
  const session = await r.tether.open({ method, header: (n) => headers[n], address: () => address });
  await fn(session);
  const set = (await r.tether.commit(session)).find((c) => c.startsWith('sid='))?.split(';')[0];
  return { session, cookie: set ?? cookie };
}

function anomalies(r: Rig): string[] {
  const seen: string[] = [];
  r.tether.events.on('anomaly', (m: { reason?: string }) => void seen.push(m.reason ?? ''));
  return seen;
}

/** The network stored in the session's record, as listUserSessions shows it. */
async function networkStored(r: Rig, userId: string): Promise<Array<string | null>> {
  return (await r.tether.listUserSessions(userId)).map((s) => s.network);
}

describe('client address changes (addressChange)', () => {
  it('networkOf when given IPv4, IPv4-mapped IPv6, IPv6 with a zone, or no address then gives the prefix in CIDR, or undefined', () => {
    const p = { ipv4: 24, ipv6: 48 };
    assert.equal(networkOf('203.0.113.77', p), '203.0.113.0/24');
    assert.equal(networkOf('::ffff:203.0.113.9', p), '203.0.113.0/24', 'an IPv4-mapped address is its IPv4 one');
    assert.equal(networkOf('2001:db8:85a3:1234::1', p), '2001:db8:85a3::/48');
    assert.equal(networkOf('fe80::1%eth0', p), 'fe80::/48');
    assert.equal(networkOf('203.0.113.77', { ipv4: 32, ipv6: 128 }), '203.0.113.77/32');
    for (const bad of [undefined, '', 'localhost', '203.0.113.300', 'not an address']) assert.equal(networkOf(bad, p), undefined, String(bad));
  });

  it('clientNetwork when given IPv4, IPv4-mapped IPv6 or two IPv6 addresses of one /64 then keys IPv4 by the address and IPv6 by its /64', () => {
    assert.equal(clientNetwork('203.0.113.77'), '203.0.113.77/32');
    assert.equal(clientNetwork('::ffff:203.0.113.77'), '203.0.113.77/32');
    assert.equal(clientNetwork('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientNetwork('2001:db8:1:2:bbbb::9'), clientNetwork('2001:db8:1:2:aaaa::1'));
    assert.notEqual(clientNetwork('2001:db8:1:3::1'), clientNetwork('2001:db8:1:2::1'));
    assert.equal(clientNetwork('not an address'), undefined);
  });

  it('session under addressChange report when seen from another network then one anomaly, the request goes on, and the new network is stored', async () => {
    const r = rig({ addressChange: 'report' });
    const seen = anomalies(r);
    const { cookie } = await from(r, '203.0.113.7', undefined, (s) => s.login('alice'), 'POST');
    assert.deepEqual(await networkStored(r, 'alice'), ['203.0.113.0/24']);
    const sets = (): number => r.store.log.filter((c) => c.method === 'set').length;
    const before = sets();
    await from(r, '203.0.113.200', cookie);
    await from(r, '::ffff:203.0.113.8', cookie);
    assert.deepEqual(seen, [], 'the same /24 is the same network');
    assert.equal(sets(), before, 'and costs no write');
    const moved = await from(r, '198.51.100.7', cookie);
    assert.equal(moved.session.userId, 'alice');
    assert.deepEqual(seen, ['address']);
    assert.deepEqual(await networkStored(r, 'alice'), ['198.51.100.0/24']);
    await from(r, '198.51.100.9', cookie);
    assert.deepEqual(seen, ['address'], 'reported once per move');
    // A request the adapter knows no address for (a WebSocket handshake) compares nothing and keeps the network.
    await from(r, undefined, cookie, (s) => s.set('n', 1), 'POST');
    assert.deepEqual(await networkStored(r, 'alice'), ['198.51.100.0/24']);
    assert.equal(r.tether.stats().anomalies, 1);
  });

  it('session under addressChange end when seen from another network then it is destroyed and the request goes on with a fresh one', async () => {
    const r = rig({ addressChange: 'end' });
    const ended: Array<string | undefined> = [];
    r.tether.events.on('destroyed', (m: { reason?: string }) => void ended.push(m.reason));
    const { cookie } = await from(r, '2001:db8:1::5', undefined, (s) => s.login('bob'), 'POST');
    assert.equal((await from(r, '2001:db8:1:ffff::9', cookie)).session.userId, 'bob', 'the same /48');
    const moved = await from(r, '2001:db8:2::5', cookie);
    assert.equal(moved.session.userId, null);
    assert.equal(moved.session.isNew, true);
    assert.deepEqual(ended, ['anomaly']);
    assert.deepEqual(await r.tether.listUserSessions('bob'), []);
  });

  it('session under addressChange off (the default) when seen from anywhere then stores and reports nothing, and keeps a network stored before', async () => {
    const r = rig();
    const seen = anomalies(r);
    const { cookie } = await from(r, '203.0.113.7', undefined, (s) => s.login('carol'), 'POST');
    await from(r, '198.51.100.7', cookie);
    assert.deepEqual(seen, []);
    assert.deepEqual(await networkStored(r, 'carol'), [null]);
    // A session stored under report keeps its network through an engine with it off.
    const on = new Tether<SessionData>({ secrets: r.tether.options.secrets, clock: r.clock, store: r.store, addressChange: 'report' });
    const first = await on.open({ method: 'POST', header: (n) => (n === 'user-agent' ? 'browser/1.0' : undefined), address: () => '192.0.2.1' });
    first.login('dave');
    const daveCookie = (await on.commit(first)).find((c) => c.startsWith('sid='))!.split(';')[0];
    await from(r, '198.51.100.7', daveCookie, (s) => s.set('n', 2), 'POST');
    assert.deepEqual(await networkStored(r, 'dave'), ['192.0.2.0/24']);
  });

  it('session under addressChange report when two processes write it at once then the replayed write keeps the request\'s network', async () => {
    const a = rig({ addressChange: 'report' });
    const b = rig({ addressChange: 'report' }, a);
    const { cookie } = await from(a, '203.0.113.7', undefined, (s) => s.login('erin'), 'POST');
    const view = (address: string) => ({ method: 'POST', header: (n: string) => (n === 'cookie' ? cookie : n === 'user-agent' ? 'browser/1.0' : undefined), address: () => address });
    const sa = await a.tether.open(view('198.51.100.7'));
    const sb = await b.tether.open(view('203.0.113.9'));
    await sb.update((d) => void (d.n = 1));
    await sa.update((d) => void (d.m = 1));
    await b.tether.commit(sb);
    await a.tether.commit(sa);
    assert.deepEqual(await networkStored(a, 'erin'), ['198.51.100.0/24'], 'the later commit, replayed, stores its own network');
  });

  it('options when addressChange or addressPrefix is out of range then OPTIONS_INVALID', () => {
    for (const bad of [{ addressChange: 'always' }, { addressPrefix: { ipv4: 33 } }, { addressPrefix: { ipv6: 0 } }, { addressPrefix: { ipv4: 8.5 } }, { addressPrefix: 24 }]) {
      assert.throws(() => rig(bad as unknown as TetherOptions), (err: { code?: string }) => err.code === 'OPTIONS_INVALID', JSON.stringify(bad));
    }
  });
});
