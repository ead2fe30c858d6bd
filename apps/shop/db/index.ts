/**
 * Opens the shop's database named by SHOP_DATABASE_URL (`sqlite:<file>` or `postgres://…`), creates its
 * schema, seeds the catalog and the `admin` user.
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hashPassword, verifyPassword } from '../lib/passwords.js';
import { SEED_PRODUCTS } from './seed.js';
import { SqliteShopDb } from './sqlite.js';
import type { ShopDb } from './types.js';

export type { ShopDb, Product, User, Order, OrderLine } from './types.js';

export const ADMIN_USERNAME = 'admin';

export interface OpenShopDbOptions {
  /** The seeded admin's password; when unset one is generated at the first start and printed once. */
  adminPassword?: string | undefined;
  log: (line: string) => void;
  /**
   * Ends every session of a user, the admin when `adminPassword` replaces its stored password: called
   * before the new password is stored, so a failure leaves the old one, to be replaced (and its
   * sessions ended) at the next start.
   */
  endSessions?: (userId: string) => Promise<number>;
}

async function connect(url: string): Promise<ShopDb> {
  if (url.startsWith('sqlite:')) return new SqliteShopDb(url.slice('sqlite:'.length));
  if (/^postgres(ql)?:\/\//.test(url)) {
    // Loaded only when asked for, so the default install never needs pg.
    const { PostgresShopDb } = await import('./postgres.js');
    return new PostgresShopDb(url);
  }
  throw new Error(`SHOP_DATABASE_URL: unsupported URL; use sqlite:<file> or postgres://…`);
}

export async function openShopDb(url: string, options: OpenShopDbOptions): Promise<ShopDb> {
  const db = await connect(url);
  try {
    await db.migrate();
    await db.upsertProducts(SEED_PRODUCTS);
    await seedAdmin(db, options);
    return db;
  } catch (err) {
    await db.close();
    throw err;
  }
}

async function seedAdmin(db: ShopDb, options: OpenShopDbOptions): Promise<void> {
  const existing = await db.findUserByName(ADMIN_USERNAME);
  if (existing) {
    // An explicitly configured password wins over the stored one, so an operator can always get in.
    if (options.adminPassword !== undefined && !(await verifyPassword(options.adminPassword, existing.passwordHash))) {
      const ended = await options.endSessions?.(existing.id);
      await db.setPasswordHash(existing.id, await hashPassword(options.adminPassword));
      options.log(`admin password updated from SHOP_ADMIN_PASSWORD${ended === undefined ? '' : `; ended the ${ended} session(s) signed in with the old one`}`);
    }
    return;
  }
  const password = options.adminPassword ?? randomBytes(12).toString('base64url');
  const created = await db.createUser({
    id: randomUUID(), username: ADMIN_USERNAME, passwordHash: await hashPassword(password), isAdmin: true, createdAt: Date.now(), disabledAt: null,
  });
  // Another worker may have seeded it a moment earlier; only the one that created it prints.
  if (created && options.adminPassword === undefined) {
    options.log(`created the admin user: username "${ADMIN_USERNAME}", password "${password}" (shown once; set SHOP_ADMIN_PASSWORD to choose it)`);
  }
}
