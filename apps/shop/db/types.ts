/**
 * The shop's own data (users, products, orders) behind one small repository interface, implemented
 * for SQLite (the embedded default) and PostgreSQL. Money is integer cents inside, never floats.
 * @module
 */

export interface Product {
  id: string;
  name: string;
  /** Price in US cents. */
  priceCents: number;
  description: string;
  category: string;
  /** A hue (0–359) for the product's illustration. */
  hue: number;
}

export interface User {
  id: string;
  username: string;
  passwordHash: string;
  isAdmin: boolean;
  createdAt: number;
  /** When an admin disabled the account (it cannot log in, and its sessions were ended); null: enabled. */
  disabledAt: number | null;
}

export interface OrderLine {
  productId: string;
  name: string;
  quantity: number;
  priceCents: number;
}

export interface Order {
  id: string;
  /** Null: a guest's order, placed without an account. */
  userId: string | null;
  /** Where a guest's receipt goes; null for a user's order. */
  email: string | null;
  /** One per checkout run: a second confirm of the same run finds this order instead of placing another. */
  idempotencyKey: string;
  items: OrderLine[];
  totalCents: number;
  shipping: Record<string, string>;
  payment: { last4: string; expiry: string; brand: string };
  createdAt: number;
}

export interface ShopDb {
  readonly kind: 'sqlite' | 'postgres';
  /** Creates the schema and seeds products (idempotent). */
  migrate(): Promise<void>;
  listProducts(): Promise<Product[]>;
  getProduct(id: string): Promise<Product | null>;
  upsertProducts(products: readonly Product[]): Promise<void>;
  /** Null when the username is taken (case-insensitively). */
  createUser(user: User): Promise<User | null>;
  findUserByName(username: string): Promise<User | null>;
  findUserById(id: string): Promise<User | null>;
  setPasswordHash(userId: string, hash: string): Promise<void>;
  /** Users whose name starts with `prefix` (any case), by name, at most `limit`. */
  listUsers(prefix: string, limit: number): Promise<User[]>;
  /** Disables the account at `at`, or enables it again with null; false when there is no such user. */
  setDisabled(userId: string, at: number | null): Promise<boolean>;
  /** Deletes the user and their orders in one transaction; false when there is no such user. */
  deleteUser(userId: string): Promise<boolean>;
  /** Inserts the order unless one with its idempotency key exists; returns whichever is stored. */
  placeOrder(order: Order): Promise<{ order: Order; created: boolean }>;
  findOrderByKey(idempotencyKey: string): Promise<Order | null>;
  /** Newest first. */
  listOrders(userId: string): Promise<Order[]>;
  /**
   * The guests' orders (stored without a user) among `ids`, newest first; an ID that names a user's
   * order, or none, is left out. At most MAX_GUEST_ORDER_IDS IDs (a RangeError past that), so one
   * call is one bounded query.
   */
  listGuestOrders(ids: readonly string[]): Promise<Order[]>;
  /**
   * Counts a password check in progress against each of `keys` (opaque, already hashed), in one
   * transaction serialised per key: drops attempts from before `since`, adds one at `at` per key, and
   * returns each key's attempts since `since`, this one included, and the IDs of the rows added.
   */
  addLoginAttempt(keys: readonly string[], at: number, since: number): Promise<{ ids: number[]; counts: number[] }>;
  /** Forgets attempts by the IDs `addLoginAttempt` gave (a check that succeeded, or was refused unchecked). */
  removeLoginAttempts(ids: readonly number[]): Promise<void>;
  close(): Promise<void>;
}

/** How many IDs one listGuestOrders call takes: a guest's session keeps far fewer (GUEST_ORDERS_KEPT). */
export const MAX_GUEST_ORDER_IDS = 100;

/** The IDs listGuestOrders looks up, without repeats; a RangeError when there are too many. */
export function guestOrderIds(ids: readonly string[]): string[] {
  const unique = [...new Set(ids)];
  if (unique.length > MAX_GUEST_ORDER_IDS) throw new RangeError(`listGuestOrders takes at most ${MAX_GUEST_ORDER_IDS} IDs, not ${unique.length}`);
  return unique;
}

/** A LIKE pattern (escape character: backslash) for names starting with `prefix` exactly as typed. */
export function likePrefix(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
}
