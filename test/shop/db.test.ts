/**
 * The shop's repository on both databases it supports: an account can be disabled, enabled and deleted
 * (with its orders, and nobody else's), a guest's order is stored without a user, guest orders listed
 * by their IDs never include a user's, a database created before accounts could be disabled and before
 * guest orders is migrated in place with its users and orders intact, and password checks are counted
 * per key, exactly, however many run at once. Real SQLite files and a real PostgreSQL server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SqliteShopDb } from '../../apps/shop/db/sqlite.js';
import { PostgresShopDb } from '../../apps/shop/db/postgres.js';
import type { Order, ShopDb, User } from '../../apps/shop/db/index.js';
import { MAX_GUEST_ORDER_IDS } from '../../apps/shop/db/types.js';
import { createDatabase, startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';

let dir: string;
let server: PostgresServer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-shop-db-'));
  server = await startPostgres({ fast: true });
});
after(async () => {
  await server?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const user = (name: string): User => ({ id: `id-${name}`, username: name, passwordHash: 'scrypt$x', isAdmin: false, createdAt: 1_700_000_000_000, disabledAt: null });
const order = (u: User, n: number): Order => ({
  id: `order-${u.username}-${n}`, userId: u.id, email: null, idempotencyKey: `key-${u.username}-${n}`, items: [{ productId: 'camp-mug', name: 'Mug', quantity: 1, priceCents: 1800 }],
  totalCents: 1800, shipping: { name: u.username }, payment: { last4: '4242', expiry: '12/39', brand: 'Visa' }, createdAt: 1_700_000_000_000 + n,
});

const guestOrder = (n: number): Order => ({
  id: `order-guest-${n}`, userId: null, email: 'ada@example.org', idempotencyKey: `guest-checkout:${n}`, items: [{ productId: 'candle', name: 'Candle', quantity: 2, priceCents: 2400 }],
  totalCents: 4800, shipping: { name: 'Ada' }, payment: { last4: '4444', expiry: '01/38', brand: 'Mastercard' }, createdAt: 1_700_000_000_000 + n,
});

/** A database as the shop created it before `disabled_at` and guest orders: one user with one order. */
interface Fixture {
  oldSchema(): Promise<void>;
  open(): ShopDb;
}

let pgDatabases = 0;
const databases: Record<string, () => Promise<Fixture>> = {
  SQLite: async () => {
    const file = join(dir, `shop-${Math.random().toString(36).slice(2)}.db`);
    return {
      async oldSchema() {
        const db = new Database(file);
        db.exec(`CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT NOT NULL,
          is_admin INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
          CREATE TABLE orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), idempotency_key TEXT NOT NULL UNIQUE,
          items TEXT NOT NULL, total_cents INTEGER NOT NULL, shipping TEXT NOT NULL, payment TEXT NOT NULL, created_at INTEGER NOT NULL);
          INSERT INTO users VALUES ('id-old', 'old_user', 'scrypt$old', 0, 1600000000000);
          INSERT INTO orders VALUES ('order-old', 'id-old', 'key-old', '[]', 100, '{}', '{"last4":"1111","expiry":"01/30","brand":"Visa"}', 1600000000001);`);
        db.close();
      },
      open: () => new SqliteShopDb(file),
    };
  },
  PostgreSQL: async () => {
    const url = await createDatabase(server.url, `shop_db_${++pgDatabases}`);
    return {
      async oldSchema() {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`CREATE TABLE shop_users (id TEXT PRIMARY KEY, username TEXT NOT NULL, password_hash TEXT NOT NULL,
          is_admin BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL);
          CREATE TABLE shop_orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES shop_users(id), idempotency_key TEXT NOT NULL UNIQUE,
          items JSONB NOT NULL, total_cents INTEGER NOT NULL, shipping JSONB NOT NULL, payment JSONB NOT NULL, created_at BIGINT NOT NULL, seq BIGSERIAL);
          INSERT INTO shop_users VALUES ('id-old', 'old_user', 'scrypt$old', FALSE, 1600000000000);
          INSERT INTO shop_orders (id, user_id, idempotency_key, items, total_cents, shipping, payment, created_at)
            VALUES ('order-old', 'id-old', 'key-old', '[]', 100, '{}', '{"last4":"1111","expiry":"01/30","brand":"Visa"}', 1600000000001);`);
        await client.end();
      },
      open: () => new PostgresShopDb(url),
    };
  },
};

/** Runs `fn` on a freshly migrated database of `fixture`'s kind, closed afterwards. */
async function withDb(fixture: (typeof databases)[string], fn: (db: ShopDb) => Promise<void>): Promise<void> {
  const db = (await fixture()).open();
  try {
    await db.migrate();
    await fn(db);
  } finally {
    await db.close();
  }
}

for (const [name, fixture] of Object.entries(databases)) {
  describe(`shop database on ${name}: accounts`, { timeout: 60_000 }, () => {
    it('setDisabled when set and cleared then the account reads back disabled at that time, then enabled; an unknown user is false', async () => withDb(fixture, async (db) => {
      const u = (await db.createUser(user('ada')))!;
      assert.equal((await db.findUserById(u.id))!.disabledAt, null);
      assert.equal(await db.setDisabled(u.id, 1_800_000_000_123), true);
      assert.equal((await db.findUserByName('ADA'))!.disabledAt, 1_800_000_000_123);
      assert.equal(await db.setDisabled(u.id, null), true);
      assert.equal((await db.findUserById(u.id))!.disabledAt, null);
      assert.equal(await db.setDisabled('id-nobody', 1), false);
    }));

    it('deleteUser when the user has orders then the user and their orders go and another user\'s stay; the name is free again', async () => withDb(fixture, async (db) => {
      const [a, b] = [(await db.createUser(user('alan')))!, (await db.createUser(user('grace')))!];
      for (const n of [1, 2]) await db.placeOrder(order(a, n));
      await db.placeOrder(order(b, 1));
      assert.equal(await db.deleteUser(a.id), true);
      assert.equal(await db.findUserById(a.id), null);
      assert.deepEqual(await db.listOrders(a.id), []);
      assert.equal(await db.findOrderByKey('key-alan-1'), null);
      assert.equal((await db.listOrders(b.id)).length, 1);
      assert.equal(await db.deleteUser(a.id), false);
      assert.ok(await db.createUser({ ...user('alan'), id: 'id-alan-2' }), 'the username can be taken again');
    }));

    it('listUsers when given a prefix then lists the names starting with it in any case, by name, up to the limit; wildcards match only themselves', async () => withDb(fixture, async (db) => {
      for (const n of ['bob', 'Bea', 'beth', 'b_x', 'bzz', 'carl']) await db.createUser(user(n));
      assert.deepEqual((await db.listUsers('b', 10)).map((u) => u.username), ['b_x', 'Bea', 'beth', 'bob', 'bzz']);
      assert.deepEqual((await db.listUsers('BE', 10)).map((u) => u.username), ['Bea', 'beth']);
      assert.deepEqual((await db.listUsers('b_', 10)).map((u) => u.username), ['b_x'], '_ is not a wildcard');
      assert.deepEqual((await db.listUsers('%', 10)).map((u) => u.username), [], '% is not a wildcard');
      assert.deepEqual((await db.listUsers('', 2)).map((u) => u.username), ['b_x', 'Bea']);
      assert.equal((await db.listUsers('carl', 10))[0]!.disabledAt, null);
    }));

    it('placeOrder when the order is a guest\'s then it is stored with no user and its email, found by its key, listed for no user', async () => withDb(fixture, async (db) => {
      assert.deepEqual(await db.placeOrder(guestOrder(1)), { order: guestOrder(1), created: true });
      assert.deepEqual(await db.placeOrder({ ...guestOrder(1), id: 'order-guest-again' }), { order: guestOrder(1), created: false });
      assert.deepEqual(await db.findOrderByKey('guest-checkout:1'), guestOrder(1));
      const u = (await db.createUser(user('edsger')))!;
      await db.placeOrder(order(u, 1));
      assert.equal((await db.findOrderByKey('key-edsger-1'))!.email, null);
      assert.deepEqual((await db.listOrders(u.id)).map((o) => o.id), ['order-edsger-1']);
      assert.equal(await db.deleteUser(u.id), true);
      assert.ok(await db.findOrderByKey('guest-checkout:1'), 'deleting a user leaves guest orders');
    }));

    it('listGuestOrders when the IDs name guest orders, a user\'s order and nothing then lists only the guest orders among them, newest first', async () => withDb(fixture, async (db) => {
      const u = (await db.createUser(user('barbara')))!;
      await db.placeOrder(order(u, 1));
      for (const n of [1, 2, 3]) await db.placeOrder(guestOrder(n));
      // Same time as order-guest-2: the later insert comes first, as listOrders breaks ties.
      await db.placeOrder({ ...guestOrder(2), id: 'order-guest-2b', idempotencyKey: 'guest-checkout:2b' });
      assert.deepEqual((await db.listGuestOrders(['order-guest-1', 'order-barbara-1', 'order-guest-2', 'order-none', 'order-guest-2b', 'order-guest-1'])).map((o) => o.id),
        ['order-guest-2b', 'order-guest-2', 'order-guest-1'], 'never the user\'s order, each once');
      assert.deepEqual(await db.listGuestOrders(['order-guest-3']), [guestOrder(3)]);
      assert.deepEqual(await db.listGuestOrders(['order-barbara-1']), []);
      assert.deepEqual(await db.listGuestOrders([]), []);
      assert.deepEqual(await db.listGuestOrders(["' OR 1=1 --", '%', 'order-guest-%']), [], 'IDs are values, never SQL or patterns');
      const many = Array.from({ length: MAX_GUEST_ORDER_IDS }, (_, i) => `order-guest-${i}`);
      assert.equal((await db.listGuestOrders(many)).length, 3, `${MAX_GUEST_ORDER_IDS} IDs in one call`);
      await assert.rejects(db.listGuestOrders([...many, 'one-more']), RangeError);
    }));

    it('migrate when the database predates disabling accounts and guest orders then its users and orders stay, accounts can be disabled and guests order; a second migrate changes nothing', async () => {
      const f = await fixture();
      await f.oldSchema();
      const db = f.open();
      try {
        await db.migrate();
        await db.migrate();
        const old = await db.findUserByName('old_user');
        assert.equal(old?.id, 'id-old');
        assert.equal(old?.passwordHash, 'scrypt$old');
        assert.equal(old?.disabledAt, null);
        const [kept] = await db.listOrders('id-old');
        assert.equal(kept?.id, 'order-old');
        assert.equal(kept?.email, null);
        assert.deepEqual(kept?.payment, { last4: '1111', expiry: '01/30', brand: 'Visa' });
        assert.equal((await db.placeOrder(guestOrder(2))).created, true);
        assert.equal((await db.findOrderByKey('guest-checkout:2'))!.userId, null);
        // The rebuilt SQLite table still refuses an order for a user that does not exist.
        await assert.rejects(db.placeOrder({ ...guestOrder(3), userId: 'id-nobody' }));
        await db.migrate();
        assert.equal((await db.listOrders('id-old')).length, 1);
        assert.equal(await db.setDisabled('id-old', 5), true);
        assert.equal((await db.findUserById('id-old'))!.disabledAt, 5);
      } finally {
        await db.close();
      }
    });
  });

  describe(`shop database on ${name}: login attempts`, { timeout: 60_000 }, () => {
    it('addLoginAttempt when attempts pile up, age out or are removed then each key counts its own within the window', async () => withDb(fixture, async (db) => {
      const first = await db.addLoginAttempt(['acct-a', 'addr-1'], 1_000, 0);
      assert.deepEqual(first.counts, [1, 1]);
      assert.equal(new Set(first.ids).size, 2);
      assert.deepEqual((await db.addLoginAttempt(['acct-a', 'addr-1'], 2_000, 0)).counts, [2, 2]);
      assert.deepEqual((await db.addLoginAttempt(['acct-b', 'addr-1'], 3_000, 0)).counts, [1, 3]);
      // Removing a check that succeeded takes it out of both counts.
      const ok = await db.addLoginAttempt(['acct-a', 'addr-1'], 4_000, 0);
      assert.deepEqual(ok.counts, [3, 4]);
      await db.removeLoginAttempts(ok.ids);
      // A window starting after the first two attempts no longer counts them (and drops them).
      assert.deepEqual((await db.addLoginAttempt(['acct-a', 'addr-1'], 5_000, 2_500)).counts, [1, 2]);
      assert.deepEqual((await db.addLoginAttempt(['acct-a', 'addr-1'], 5_000, 0)).counts, [2, 3], 'the attempts before the window are gone');
    }));

    it('addLoginAttempt when 12 checks of one key run at once through two handles on the database then each gets its own place: 1 to 12', async () => {
      const f = await fixture();
      const dbs = [f.open(), f.open()];
      try {
        await dbs[0]!.migrate();
        const results = await Promise.all(Array.from({ length: 12 }, (_, i) => dbs[i % 2]!.addLoginAttempt(['acct-race'], 1_000, 0)));
        assert.deepEqual(results.map((r) => r.counts[0]).sort((a, b) => a! - b!), Array.from({ length: 12 }, (_, i) => i + 1));
      } finally {
        await Promise.all(dbs.map((d) => d.close()));
      }
    });
  });
}

describe('shop database on PostgreSQL: a connection lost while checked out', { timeout: 60_000 }, () => {
  it('migrate when its connection is terminated while it waits for another worker\'s lock then it rejects, the process goes on, and a later migrate works', async () => {
    const url = await createDatabase(server.url, `shop_db_${++pgDatabases}`);
    // Another worker migrating: it holds the migration lock.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    const db = new PostgresShopDb(url);
    try {
      await holder.query('SELECT pg_advisory_lock(746574)');
      const first = db.migrate().then(() => null, (err: unknown) => err);
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        pid = (await holder.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE wait_event = 'advisory' AND query LIKE '%pg_advisory_lock%'`)).rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(pid !== undefined, 'the migration waits for the lock');
      await holder.query('SELECT pg_terminate_backend($1)', [pid]);
      assert.ok(await first instanceof Error, 'the migration failed');
      await holder.query('SELECT pg_advisory_unlock(746574)');
      await db.migrate();
      assert.deepEqual((await db.addLoginAttempt(['after-terminate'], 1_000, 0)).counts, [1], 'migrated: its tables answer');
    } finally {
      await db.close();
      await holder.end();
    }
  });
});
