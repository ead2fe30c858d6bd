/**
 * The shop's count of live sessions on this node: each session counted within its own idle timeout
 * (manual clock); in a cluster, a session that ends in one worker is no longer counted by the others.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ActiveSessions } from '../../apps/shop/lib/active-sessions.js';
import { removeTempDir, tempDir } from '../helpers/exit.js';
import { ShopClient, spawnShop, uniqueName } from '../helpers/shop.js';

const IDLE = 1_000;
const REMEMBERED = 10_000;

describe('ActiveSessions', () => {
  it('count when sessions go unseen then each is counted until its own idle timeout, remembered ones the longer', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED);
    active.seen('kept', 'u1', true, 0);
    active.seen('plain', 'u2', false, 500);
    active.seen('anon', null, false, 600);
    assert.equal(active.count(1_000), 3);
    assert.equal(active.count(1_500), 2, 'an ordinary one ends a second after it was last seen');
    assert.equal(active.count(1_600), 1);
    assert.equal(active.count(9_999), 1);
    assert.equal(active.count(10_000), 0);
  });

  it('seen when a session becomes remembered or ordinary again then it counts by its timeout as last seen', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED);
    active.seen('s', 'u1', false, 0);
    active.seen('s', 'u1', true, 100);
    assert.equal(active.count(5_000), 1);
    active.seen('s', 'u1', false, 5_000);
    assert.equal(active.count(6_000), 0);
  });

  it('ended when the session is seen again afterwards (a request in flight as it ended, answered later) then it is not counted', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED);
    active.seen('a', 'u1', false, 0);
    active.ended('a');
    active.ended('b');
    active.seen('a', 'u1', false, 10);
    active.seen('b', null, true, 10);
    active.seen('c', null, false, 10);
    assert.equal(active.count(20), 1, 'only the session that did not end');
  });

  it('forgetUser when a user has ordinary and remembered sessions then forgets both', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED);
    active.seen('a', 'u1', false, 0);
    active.seen('b', 'u1', true, 0);
    active.seen('c', 'u2', true, 0);
    active.forgetUser('u1');
    assert.equal(active.count(0), 1);
  });

  it('seen when over max then the least recently seen goes first, of either kind', () => {
    const active = new ActiveSessions(IDLE, REMEMBERED, 2);
    active.seen('kept', null, true, 0);
    active.seen('plain', null, false, 100);
    active.seen('new', null, false, 200);
    assert.equal(active.count(900), 2);
    assert.equal(active.count(1_150), 1, 'the remembered one went over the bound, not the ordinary one');
  });
});

describe('live sessions in a cluster of two workers', { timeout: 120_000 }, () => {
  it('live sessions when sessions end in another worker than the one that served them then no worker goes on counting them, one by one or all of a user\'s at once', async (t) => {
    const dataDir = await tempDir('tether-shop-');
    const shop = await spawnShop({ TETHER_DATA_DIR: dataDir, TETHER_WORKERS: '2', SHOP_ADMIN_PASSWORD: 'admin-password-for-tests' });
    t.after(async () => {
      await shop.stop();
      await removeTempDir(dataDir);
    });
    const admin = new ShopClient(shop.url);
    assert.equal((await admin.login('admin', 'admin-password-for-tests')).status, 200);
    const live = async (): Promise<Array<[string, number]>> => ((await admin.get('/api/admin/overview')).body.nodes as Array<{ node: string; activeSessions: number }>)
      .map((n) => [n.node, n.activeSessions]);
    const total = async (): Promise<number> => (await live()).reduce((sum, [, n]) => sum + n, 0);
    /** The total once it settles at `want` (a worker hears of another's ends a moment later), or the last one seen. */
    const settlesAt = async (want: number): Promise<number> => {
      let n = await total();
      for (let i = 0; i < 20 && n !== want; i++) {
        await new Promise((r) => setTimeout(r, 100));
        n = await total();
      }
      return n;
    };
    assert.equal((await live()).length, 2, 'both workers report');
    // The admin's own session: counted by the worker that answered its login and by the one its cookie
    // routes to, once that one has answered it (after the answer a count is taken in).
    let before = await total();
    for (let i = 0, n = -1; i < 20 && n !== before; i++) [n, before] = [before, await total()];
    assert.ok(before >= 1 && before <= 2, `the admin's session (${before})`);

    // Every request on a new connection, which the primary routes by its cookies: a session begun without
    // one, in whichever worker took the connection, is often ended in the other once the client drops the
    // routing cookie that names the worker that began it (the session's ID then picks the worker).
    let crossed = 0;
    for (let i = 0; i < 16; i++) {
      const c = new ShopClient(shop.url);
      const begun = await c.session();
      c.cookies.delete('sid-w');
      const ended = await c.post('/api/auth/logout', {});
      assert.equal(ended.status, 200);
      if (begun.headers['x-tether-node'] !== ended.headers['x-tether-node']) crossed++;
    }
    assert.ok(crossed > 0, 'some sessions ended in another worker than the one that began them');
    assert.equal(await settlesAt(before), before, `only the sessions still going are counted (${JSON.stringify(await live())})`);

    const name = uniqueName('cluster');
    const devices = [new ShopClient(shop.url, 'laptop')];
    assert.equal((await devices[0]!.register(name)).status, 201);
    for (let i = 0; i < 5; i++) {
      const d = new ShopClient(shop.url, `device-${i}`);
      assert.equal((await d.login(name)).status, 200);
      await d.add('notebook', 1);
      devices.push(d);
    }
    assert.ok((await settlesAt(before + devices.length)) > before, 'the user\'s sessions are counted');
    const end = await admin.post(`/api/admin/users/${name}/sessions/end`, {});
    assert.equal(end.status, 200, end.text);
    assert.equal(end.body.ended, devices.length);
    assert.equal(await settlesAt(before), before, `none of the user's sessions is counted any longer (${JSON.stringify(await live())})`);
  });
});
