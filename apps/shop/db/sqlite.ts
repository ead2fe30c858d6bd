/**
 * The shop's data in SQLite (better-sqlite3, WAL): the embedded default, one file in the data dir,
 * safe to share between the worker processes of one machine.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { guestOrderIds, likePrefix } from './types.js';
import type { Order, Product, ShopDb, User } from './types.js';

/** user_id is null for a guest's order, which has an email instead. */
function ordersTable(name: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
  id TEXT PRIMARY KEY, user_id TEXT REFERENCES users(id), email TEXT, idempotency_key TEXT NOT NULL UNIQUE,
  items TEXT NOT NULL, total_cents INTEGER NOT NULL, shipping TEXT NOT NULL, payment TEXT NOT NULL,
  created_at INTEGER NOT NULL
);`;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS products (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
  description TEXT NOT NULL, category TEXT NOT NULL, hue INTEGER NOT NULL, position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT NOT NULL,
  is_admin INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, disabled_at INTEGER
);
${ordersTable('orders')}
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at DESC);
CREATE TABLE IF NOT EXISTS login_attempts (id INTEGER PRIMARY KEY, key TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS login_attempts_by_key ON login_attempts (key, at);
CREATE INDEX IF NOT EXISTS login_attempts_by_time ON login_attempts (at);
`;

interface ProductRow { id: string; name: string; price_cents: number; description: string; category: string; hue: number }
interface UserRow { id: string; username: string; password_hash: string; is_admin: number; created_at: number; disabled_at: number | null }
interface OrderRow { id: string; user_id: string | null; email: string | null; idempotency_key: string; items: string; total_cents: number; shipping: string; payment: string; created_at: number }

const product = (r: ProductRow): Product => ({ id: r.id, name: r.name, priceCents: r.price_cents, description: r.description, category: r.category, hue: r.hue });
const user = (r: UserRow): User => ({ id: r.id, username: r.username, passwordHash: r.password_hash, isAdmin: r.is_admin === 1, createdAt: r.created_at, disabledAt: r.disabled_at });
const order = (r: OrderRow): Order => ({
  id: r.id, userId: r.user_id, email: r.email, idempotencyKey: r.idempotency_key, items: JSON.parse(r.items) as Order['items'],
  totalCents: r.total_cents, shipping: JSON.parse(r.shipping) as Order['shipping'], payment: JSON.parse(r.payment) as Order['payment'],
  createdAt: r.created_at,
});

export class SqliteShopDb implements ShopDb {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;

  constructor(path: string) {
    mkdirSync(dirname(resolve(path)), { recursive: true });
    this.#db = new Database(path, { timeout: 5_000 });
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
  }

  async migrate(): Promise<void> {
    this.#db.transaction(() => {
      this.#db.exec(SCHEMA);
      // A data file from before accounts could be disabled gains the column.
      const columns = this.#db.prepare('PRAGMA table_info(users)').all() as Array<{ name: string }>;
      if (!columns.some((c) => c.name === 'disabled_at')) this.#db.exec('ALTER TABLE users ADD COLUMN disabled_at INTEGER');
      // A data file from before guest checkout has user_id NOT NULL and no email. SQLite cannot drop a
      // NOT NULL in place, so the table is rebuilt (https://www.sqlite.org/lang_altertable.html#otheralter),
      // rowids kept: listOrders breaks ties on them.
      const orderColumns = this.#db.prepare('PRAGMA table_info(orders)').all() as Array<{ name: string; notnull: number }>;
      if (!orderColumns.some((c) => c.name === 'email')) {
        this.#db.exec(`${ordersTable('orders_new')}
          INSERT INTO orders_new (rowid, id, user_id, idempotency_key, items, total_cents, shipping, payment, created_at)
            SELECT rowid, id, user_id, idempotency_key, items, total_cents, shipping, payment, created_at FROM orders;
          DROP TABLE orders;
          ALTER TABLE orders_new RENAME TO orders;
          CREATE INDEX orders_by_user ON orders (user_id, created_at DESC);`);
      }
    }).immediate();
  }

  async listProducts(): Promise<Product[]> {
    return (this.#db.prepare('SELECT * FROM products ORDER BY position').all() as ProductRow[]).map(product);
  }

  async getProduct(id: string): Promise<Product | null> {
    const r = this.#db.prepare('SELECT * FROM products WHERE id = ?').get(id) as ProductRow | undefined;
    return r ? product(r) : null;
  }

  async upsertProducts(products: readonly Product[]): Promise<void> {
    const stmt = this.#db.prepare(`INSERT INTO products (id, name, price_cents, description, category, hue, position)
      VALUES (@id, @name, @priceCents, @description, @category, @hue, @position)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,
        description = excluded.description, category = excluded.category, hue = excluded.hue, position = excluded.position`);
    this.#db.transaction(() => products.forEach((p, position) => stmt.run({ ...p, position })))();
  }

  async createUser(u: User): Promise<User | null> {
    const res = this.#db.prepare(`INSERT INTO users (id, username, password_hash, is_admin, created_at)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`).run(u.id, u.username, u.passwordHash, u.isAdmin ? 1 : 0, u.createdAt);
    return res.changes === 1 ? u : null;
  }

  async findUserByName(username: string): Promise<User | null> {
    const r = this.#db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return r ? user(r) : null;
  }

  async findUserById(id: string): Promise<User | null> {
    const r = this.#db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return r ? user(r) : null;
  }

  async setPasswordHash(userId: string, hash: string): Promise<void> {
    this.#db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(hash, userId);
  }

  async listUsers(prefix: string, limit: number): Promise<User[]> {
    return (this.#db.prepare(`SELECT * FROM users WHERE username LIKE ? ESCAPE '\\' ORDER BY username COLLATE NOCASE LIMIT ?`)
      .all(likePrefix(prefix), limit) as UserRow[]).map(user);
  }

  async setDisabled(userId: string, at: number | null): Promise<boolean> {
    return this.#db.prepare('UPDATE users SET disabled_at = ? WHERE id = ?').run(at, userId).changes === 1;
  }

  async deleteUser(userId: string): Promise<boolean> {
    return this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM orders WHERE user_id = ?').run(userId);
      return this.#db.prepare('DELETE FROM users WHERE id = ?').run(userId).changes === 1;
    }).immediate();
  }

  async placeOrder(o: Order): Promise<{ order: Order; created: boolean }> {
    const res = this.#db.prepare(`INSERT INTO orders (id, user_id, email, idempotency_key, items, total_cents, shipping, payment, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING`).run(
      o.id, o.userId, o.email, o.idempotencyKey, JSON.stringify(o.items), o.totalCents, JSON.stringify(o.shipping), JSON.stringify(o.payment), o.createdAt);
    if (res.changes === 1) return { order: o, created: true };
    const r = this.#db.prepare('SELECT * FROM orders WHERE idempotency_key = ?').get(o.idempotencyKey) as OrderRow;
    return { order: order(r), created: false };
  }

  async findOrderByKey(key: string): Promise<Order | null> {
    const r = this.#db.prepare('SELECT * FROM orders WHERE idempotency_key = ?').get(key) as OrderRow | undefined;
    return r ? order(r) : null;
  }

  async listOrders(userId: string): Promise<Order[]> {
    return (this.#db.prepare('SELECT * FROM orders WHERE user_id = ? ORDER BY created_at DESC, rowid DESC').all(userId) as OrderRow[]).map(order);
  }

  async listGuestOrders(ids: readonly string[]): Promise<Order[]> {
    const unique = guestOrderIds(ids);
    if (unique.length === 0) return [];
    // One placeholder per ID (at most MAX_GUEST_ORDER_IDS): the IDs are only ever bound, never spliced in.
    const placeholders = unique.map(() => '?').join(', ');
    return (this.#db.prepare(`SELECT * FROM orders WHERE user_id IS NULL AND id IN (${placeholders}) ORDER BY created_at DESC, rowid DESC`)
      .all(...unique) as OrderRow[]).map(order);
  }

  async addLoginAttempt(keys: readonly string[], at: number, since: number): Promise<{ ids: number[]; counts: number[] }> {
    return this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM login_attempts WHERE at < ?').run(since);
      const insert = this.#db.prepare('INSERT INTO login_attempts (key, at) VALUES (?, ?)');
      const count = this.#db.prepare('SELECT count(*) AS n FROM login_attempts WHERE key = ? AND at >= ?');
      const ids = keys.map((k) => Number(insert.run(k, at).lastInsertRowid));
      const counts = keys.map((k) => (count.get(k, since) as { n: number }).n);
      return { ids, counts };
    }).immediate();
  }

  async removeLoginAttempts(ids: readonly number[]): Promise<void> {
    const del = this.#db.prepare('DELETE FROM login_attempts WHERE id = ?');
    this.#db.transaction(() => ids.forEach((id) => del.run(id)))();
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
