/**
 * The shop's limit on failed password checks holds exactly: checks sent at once cannot pass it
 * together, and two shop nodes sharing one PostgreSQL database count together (as behind HAProxy); so
 * does its limit on registrations from one client address, each of which costs a password hash too, and
 * its limit on every password check from one client address, right or wrong.
 * Real shops in-process, real SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ShopClient, startTestShop, uniqueName } from '../helpers/shop.js';
import type { Reply, TestShop } from '../helpers/shop.js';
import { createDatabase, startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';

const LIMIT = 3;

function assertThrottled(r: Reply): void {
  assert.equal(r.status, 429, `expected 429, got ${r.status} ${r.text}`);
  assert.equal(r.body?.error?.code, 'RATE_LIMITED');
}

describe('shop login limits: checks sent at once', { timeout: 60_000 }, () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({ SHOP_LOGIN_FAILURES_PER_ACCOUNT: String(LIMIT), SHOP_LOGIN_FAILURES_PER_ADDRESS: '1000' });
  });
  after(async () => {
    await shop?.stop();
  });

  it('wrong passwords when 8 are sent at once for one account then exactly 3 are checked and the rest answer 429; then even the right one does', async () => {
    const username = uniqueName('burst');
    assert.equal((await new ShopClient(shop.url).register(username)).status, 201);
    const clients = Array.from({ length: 8 }, () => new ShopClient(shop.url));
    await Promise.all(clients.map((c) => c.session()));
    const replies = await Promise.all(clients.map((c, i) => c.login(username, `wrong password ${i}`)));
    const statuses = replies.map((r) => r.status).sort();
    assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429, 429, 429], replies.map((r) => `${r.status} ${r.text}`).join('\n'));
    assertThrottled(await new ShopClient(shop.url).login(username));
  });

  it('right password when it is checked then it is not counted: more logins than the limit all succeed', async () => {
    const username = uniqueName('fine');
    assert.equal((await new ShopClient(shop.url).register(username)).status, 201);
    for (let i = 0; i < LIMIT + 2; i++) assert.equal((await new ShopClient(shop.url).login(username)).status, 200);
    // Two wrong ones still leave room for the right one.
    for (let i = 0; i < LIMIT - 1; i++) assert.equal((await new ShopClient(shop.url).login(username, 'nope nope nope')).status, 401);
    assert.equal((await new ShopClient(shop.url).login(username)).status, 200);
  });
});

describe('shop login limits: per client address behind a trusted proxy', { timeout: 60_000 }, () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({ SHOP_LOGIN_FAILURES_PER_ACCOUNT: '1000', SHOP_LOGIN_FAILURES_PER_ADDRESS: String(LIMIT), SHOP_TRUST_PROXY: '127.0.0.1' });
  });
  after(async () => {
    await shop?.stop();
  });

  it('wrong passwords when one IPv6 client sends them from many addresses of its /64 then they count as one address', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= LIMIT + 2; i++) {
      const from = { 'x-forwarded-for': `2001:db8:9:9::${i.toString(16)}` };
      const client = new ShopClient(shop.url);
      await client.request('GET', '/api/session', { headers: from });
      statuses.push((await client.request('POST', '/api/auth/login', { json: { username: uniqueName('nobody'), password: 'wrong password' }, headers: from })).status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    const other = { 'x-forwarded-for': '2001:db8:9:a::1' };
    const client = new ShopClient(shop.url);
    await client.request('GET', '/api/session', { headers: other });
    assert.equal((await client.request('POST', '/api/auth/login', { json: { username: uniqueName('nobody'), password: 'wrong password' }, headers: other })).status, 401, 'another /64 has its own allowance');
  });
});

describe('shop password checks: per client address, right or wrong', { timeout: 60_000 }, () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({ SHOP_PASSWORD_CHECKS_PER_MINUTE: '4', SHOP_TRUST_PROXY: '127.0.0.1' });
  });
  after(async () => {
    await shop?.stop();
  });

  it('password checks when one address passes SHOP_PASSWORD_CHECKS_PER_MINUTE with right passwords then logins, password changes and step-ups answer 429 RATE_LIMITED with Retry-After, audited, while other addresses go on', async () => {
    const username = uniqueName('loop');
    const from = { 'x-forwarded-for': '198.51.100.80' };
    assert.equal((await new ShopClient(shop.url).register(username)).status, 201, 'a registration is not a password check');
    const login = async (password = 'correct horse battery', headers = from): Promise<{ client: ShopClient; reply: Reply }> => {
      const client = new ShopClient(shop.url);
      await client.request('GET', '/api/session', { headers });
      return { client, reply: await client.request('POST', '/api/auth/login', { json: { username, password }, headers }) };
    };
    const { client, reply } = await login();
    assert.equal(reply.status, 200);
    assert.equal((await login()).reply.status, 200);
    const change = await client.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'another horse battery' }, { headers: from });
    assert.equal(change.status, 200, change.text);
    assert.equal((await login('another horse battery')).reply.status, 200);
    const logs = shop.logs.length;
    const refused = (await login('another horse battery')).reply;
    assertThrottled(refused);
    assert.equal(refused.headers['retry-after'], '60');
    assert.equal(refused.body.error.reason, 'password_checks');
    assert.ok(shop.logs.slice(logs).some((l) => l.includes('"auth.throttled"') && l.includes('"password_checks"')), 'audited as auth.throttled');
    assertThrottled(await client.post('/api/me/password', { currentPassword: 'another horse battery', newPassword: 'a third horse battery' }, { headers: from }));
    assertThrottled(await client.request('DELETE', '/api/me/sessions/others', { json: { password: 'another horse battery' }, headers: from }));
    assert.equal((await login('another horse battery', { 'x-forwarded-for': '198.51.100.81' })).reply.status, 200, 'another address has its own allowance');
  });
});

describe('shop registration limits: per client address', { timeout: 60_000 }, () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({ SHOP_REGISTRATIONS_PER_HOUR: String(LIMIT), SHOP_TRUST_PROXY: '127.0.0.1' });
  });
  after(async () => {
    await shop?.stop();
  });

  const register = async (from: string, username: string): Promise<Reply> => {
    const client = new ShopClient(shop.url);
    const headers = { 'x-forwarded-for': from };
    await client.request('GET', '/api/session', { headers });
    return client.request('POST', '/api/auth/register', { json: { username, password: 'correct horse battery' }, headers });
  };

  it('registrations when one address passes SHOP_REGISTRATIONS_PER_HOUR, 8 sent at once, then exactly 3 are registered and the rest answer 429 RATE_LIMITED with Retry-After, while other addresses go on', async () => {
    const names = Array.from({ length: 8 }, () => uniqueName('signup'));
    const replies = await Promise.all(names.map((name) => register('198.51.100.60', name)));
    assert.deepEqual(replies.map((r) => r.status).sort(), [201, 201, 201, 429, 429, 429, 429, 429], replies.map((r) => `${r.status} ${r.text}`).join('\n'));
    for (const [i, r] of replies.entries()) {
      if (r.status !== 429) continue;
      assertThrottled(r);
      assert.equal(r.headers['retry-after'], '3600');
      assert.equal(r.body.error.reason, 'registrations');
      assert.equal(await shop.shop.db.findUserByName(names[i]!), null, 'a refused registration stores no account');
    }
    assertThrottled(await register('198.51.100.60', uniqueName('later')));
    assert.equal((await register('198.51.100.61', uniqueName('other'))).status, 201, 'another address has its own allowance');
    // A name that is taken is answered as such, and costs nothing from the allowance.
    assert.equal((await register('198.51.100.62', names.find((_, i) => replies[i]!.status === 201)!)).status, 409);
    for (let i = 0; i < LIMIT; i++) assert.equal((await register('198.51.100.62', uniqueName('fresh'))).status, 201);
  });

  it('registrations when one IPv6 client sends them from many addresses of its /64 then they count as one client', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= LIMIT + 1; i++) statuses.push((await register(`2001:db8:77:1::${i.toString(16)}`, uniqueName('six'))).status);
    assert.deepEqual(statuses, [201, 201, 201, 429]);
    assert.equal((await register('2001:db8:77:2::1', uniqueName('six'))).status, 201, 'the next /64 is another client');
  });
});

describe('shop login limits: two nodes sharing one PostgreSQL database', { timeout: 120_000 }, () => {
  let server: PostgresServer;
  const shops: TestShop[] = [];
  before(async () => {
    server = await startPostgres({ fast: true });
    const url = await createDatabase(server.url, 'shop_login_limits');
    for (const name of ['node-a', 'node-b']) {
      shops.push(await startTestShop({
        SHOP_DATABASE_URL: url, TETHER_NODE_NAME: name, SHOP_LOGIN_FAILURES_PER_ACCOUNT: String(LIMIT), SHOP_LOGIN_FAILURES_PER_ADDRESS: '1000',
      }));
    }
  });
  after(async () => {
    for (const s of shops) await s.stop();
    await server?.dispose();
  });

  it('wrong passwords when spread over both nodes then the limit holds once: the next check on either node answers 429', async () => {
    const [a, b] = shops as [TestShop, TestShop];
    const username = uniqueName('spread');
    assert.equal((await new ShopClient(a.url).register(username)).status, 201);
    assert.equal((await new ShopClient(b.url).login(username)).status, 200, 'the account made on one node logs in on the other');
    for (let i = 0; i < LIMIT; i++) {
      const node = i % 2 === 0 ? a : b;
      assert.equal((await new ShopClient(node.url).login(username, `wrong ${i}`)).status, 401, `attempt ${i + 1}`);
    }
    assertThrottled(await new ShopClient(a.url).login(username));
    assertThrottled(await new ShopClient(b.url).login(username));
  });
});
