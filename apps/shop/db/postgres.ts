/**
 * The shop's data in PostgreSQL (`pg`), for deployments where Postgres is already the system of record.
 * @module
 */
import pg from 'pg';
import { guestOrderIds, likePrefix } from './types.js';
import type { Order, Product, ShopDb, User } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS shop_products (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
  description TEXT NOT NULL, category TEXT NOT NULL, hue INTEGER NOT NULL, position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shop_users (
  id TEXT PRIMARY KEY, username TEXT NOT NULL, password_hash TEXT NOT NULL,
  is_admin BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL
);
ALTER TABLE shop_users ADD COLUMN IF NOT EXISTS disabled_at BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS shop_users_username ON shop_users (lower(username));
CREATE TABLE IF NOT EXISTS shop_orders (
  id TEXT PRIMARY KEY, user_id TEXT REFERENCES shop_users(id), idempotency_key TEXT NOT NULL UNIQUE,
  items JSONB NOT NULL, total_cents INTEGER NOT NULL, shipping JSONB NOT NULL, payment JSONB NOT NULL,
  created_at BIGINT NOT NULL, seq BIGSERIAL
);
-- Guest orders (no user, an email for the receipt); a table from before them gains both.
ALTER TABLE shop_orders ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE shop_orders ADD COLUMN IF NOT EXISTS email TEXT;
CREATE INDEX IF NOT EXISTS shop_orders_by_user ON shop_orders (user_id, created_at DESC);
CREATE TABLE IF NOT EXISTS shop_login_attempts (id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS shop_login_attempts_by_key ON shop_login_attempts (key, at);
CREATE INDEX IF NOT EXISTS shop_login_attempts_by_time ON shop_login_attempts (at);
`;

interface ProductRow { id: string; name: string; price_cents: number; description: string; category: string; hue: number }
interface UserRow { id: string; username: string; password_hash: string; is_admin: boolean; created_at: string; disabled_at: string | null }
interface OrderRow { id: string; user_id: string | null; email: string | null; idempotency_key: string; items: Order['items']; total_cents: number; shipping: Order['shipping']; payment: Order['payment']; created_at: string }

const product = (r: ProductRow): Product => ({ id: r.id, name: r.name, priceCents: r.price_cents, description: r.description, category: r.category, hue: r.hue });
const user = (r: UserRow): User => ({ id: r.id, username: r.username, passwordHash: r.password_hash, isAdmin: r.is_admin, createdAt: Number(r.created_at),
  disabledAt: r.disabled_at === null ? null : Number(r.disabled_at) });
const order = (r: OrderRow): Order => ({
  id: r.id, userId: r.user_id, email: r.email, idempotencyKey: r.idempotency_key, items: r.items, totalCents: r.total_cents,
  shipping: r.shipping, payment: r.payment, createdAt: Number(r.created_at),
});

export class PostgresShopDb implements ShopDb {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(url: string) {
    this.#pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.#pool.on('error', () => {});
  }

  async migrate(): Promise<void> {
    await this.#withClient(async (client) => {
      // Several workers may start at once: one migrates, the others wait for it.
      await client.query('SELECT pg_advisory_lock(746574)');
      try {
        await client.query(SCHEMA);
      } finally {
        await client.query('SELECT pg_advisory_unlock(746574)').catch(() => {});
      }
    });
  }

  /**
   * Runs `fn` on one pooled connection. A checked-out client has none of the pool's listeners: its
   * connection dropping meanwhile would be an uncaught 'error' without this one (the query under way
   * rejects too, and that is what `fn` sees). A client whose work failed is not reused, as pool.query
   * does: a terminated backend answers the query under way with an error before its socket closes, so
   * the client may look healthy when it is released.
   */
  async #withClient<R>(fn: (client: pg.PoolClient) => Promise<R>): Promise<R> {
    const client = await this.#pool.connect();
    const onError = (): void => {};
    client.on('error', onError);
    try {
      const result = await fn(client);
      client.off('error', onError);
      client.release();
      return result;
    } catch (err) {
      // The listener stays: the client is dropped, and its socket may still report the failure.
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  }

  async listProducts(): Promise<Product[]> {
    return (await this.#pool.query<ProductRow>('SELECT * FROM shop_products ORDER BY position')).rows.map(product);
  }

  async getProduct(id: string): Promise<Product | null> {
    const r = (await this.#pool.query<ProductRow>('SELECT * FROM shop_products WHERE id = $1', [id])).rows[0];
    return r ? product(r) : null;
  }

  async upsertProducts(products: readonly Product[]): Promise<void> {
    await this.#transaction(async (client) => {
      for (const [position, p] of products.entries()) {
        await client.query(`INSERT INTO shop_products (id, name, price_cents, description, category, hue, position)
          VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = $2, price_cents = $3,
          description = $4, category = $5, hue = $6, position = $7`, [p.id, p.name, p.priceCents, p.description, p.category, p.hue, position]);
      }
    });
  }

  async createUser(u: User): Promise<User | null> {
    const res = await this.#pool.query(`INSERT INTO shop_users (id, username, password_hash, is_admin, created_at)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, [u.id, u.username, u.passwordHash, u.isAdmin, u.createdAt]);
    return res.rowCount === 1 ? u : null;
  }

  async findUserByName(username: string): Promise<User | null> {
    const r = (await this.#pool.query<UserRow>('SELECT * FROM shop_users WHERE lower(username) = lower($1)', [username])).rows[0];
    return r ? user(r) : null;
  }

  async findUserById(id: string): Promise<User | null> {
    const r = (await this.#pool.query<UserRow>('SELECT * FROM shop_users WHERE id = $1', [id])).rows[0];
    return r ? user(r) : null;
  }

  async setPasswordHash(userId: string, hash: string): Promise<void> {
    await this.#pool.query('UPDATE shop_users SET password_hash = $1 WHERE id = $2', [hash, userId]);
  }

  async listUsers(prefix: string, limit: number): Promise<User[]> {
    return (await this.#pool.query<UserRow>(`SELECT * FROM shop_users WHERE lower(username) LIKE lower($1) ORDER BY lower(username) COLLATE "C" LIMIT $2`, [likePrefix(prefix), limit])).rows.map(user);
  }

  async setDisabled(userId: string, at: number | null): Promise<boolean> {
    return (await this.#pool.query('UPDATE shop_users SET disabled_at = $1 WHERE id = $2', [at, userId])).rowCount === 1;
  }

  async deleteUser(userId: string): Promise<boolean> {
    return this.#transaction(async (client) => {
      await client.query('DELETE FROM shop_orders WHERE user_id = $1', [userId]);
      return (await client.query('DELETE FROM shop_users WHERE id = $1', [userId])).rowCount === 1;
    });
  }

  async placeOrder(o: Order): Promise<{ order: Order; created: boolean }> {
    const res = await this.#pool.query(`INSERT INTO shop_orders (id, user_id, email, idempotency_key, items, total_cents, shipping, payment, created_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (idempotency_key) DO NOTHING`,
    [o.id, o.userId, o.email, o.idempotencyKey, JSON.stringify(o.items), o.totalCents, JSON.stringify(o.shipping), JSON.stringify(o.payment), o.createdAt]);
    if (res.rowCount === 1) return { order: o, created: true };
    const r = (await this.#pool.query<OrderRow>('SELECT * FROM shop_orders WHERE idempotency_key = $1', [o.idempotencyKey])).rows[0]!;
    return { order: order(r), created: false };
  }

  async findOrderByKey(key: string): Promise<Order | null> {
    const r = (await this.#pool.query<OrderRow>('SELECT * FROM shop_orders WHERE idempotency_key = $1', [key])).rows[0];
    return r ? order(r) : null;
  }

  async listOrders(userId: string): Promise<Order[]> {
    return (await this.#pool.query<OrderRow>('SELECT * FROM shop_orders WHERE user_id = $1 ORDER BY created_at DESC, seq DESC', [userId])).rows.map(order);
  }

  async listGuestOrders(ids: readonly string[]): Promise<Order[]> {
    const unique = guestOrderIds(ids);
    if (unique.length === 0) return [];
    return (await this.#pool.query<OrderRow>('SELECT * FROM shop_orders WHERE user_id IS NULL AND id = ANY($1::text[]) ORDER BY created_at DESC, seq DESC', [unique])).rows.map(order);
  }

  async addLoginAttempt(keys: readonly string[], at: number, since: number): Promise<{ ids: number[]; counts: number[] }> {
    return this.#transaction(async (client) => {
      // One check at a time per key, on every node sharing the database: each counts the ones before it.
      for (const k of [...keys].sort()) await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`shop-login:${k}`]);
      await client.query('DELETE FROM shop_login_attempts WHERE at < $1', [since]);
      const ids: number[] = [];
      const counts: number[] = [];
      for (const k of keys) {
        ids.push(Number((await client.query<{ id: string }>('INSERT INTO shop_login_attempts (key, at) VALUES ($1, $2) RETURNING id', [k, at])).rows[0]!.id));
      }
      for (const k of keys) {
        counts.push(Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM shop_login_attempts WHERE key = $1 AND at >= $2', [k, since])).rows[0]!.n));
      }
      return { ids, counts };
    });
  }

  async removeLoginAttempts(ids: readonly number[]): Promise<void> {
    await this.#pool.query('DELETE FROM shop_login_attempts WHERE id = ANY($1::bigint[])', [ids]);
  }

  /** Runs `fn` in one transaction on one pooled connection, rolled back when it throws. */
  async #transaction<R>(fn: (client: pg.PoolClient) => Promise<R>): Promise<R> {
    return this.#withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }
}
