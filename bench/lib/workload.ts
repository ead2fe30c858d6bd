/**
 * The workload every stack serves, identical across stacks: the routes, the ~200-byte session each
 * seeded session holds, and the JSON each route answers, so only the session layer differs.
 * @module
 */

/** Routes: GET /read reads the session, POST /write changes it, POST /login regenerates it,
 * POST /race is a naive read-modify-write with an await in between, POST /seed creates a session. */
export const ROUTES = { read: '/read', write: '/write', login: '/login', race: '/race', seed: '/seed' } as const;

/** Data a seeded session holds: about 200 bytes of JSON (a small cart, preferences, two counters). */
export interface ShopSession {
  [key: string]: unknown;
  user?: string;
  cart: Array<{ sku: string; qty: number; price: number }>;
  prefs: { theme: string; lang: string; currency: string };
  n: number;
  r: number;
}

/** Keys of ShopSession, for stacks whose regenerate() keeps only listed keys. */
export const SESSION_KEYS = ['user', 'cart', 'prefs', 'n', 'r'] as const;

export function seedData(i: number): ShopSession {
  const sku = (k: number): string => `SKU-${String(10_000 + ((i * 7 + k * 13) % 90_000)).padStart(5, '0')}`;
  return {
    cart: [
      { sku: sku(1), qty: 1 + (i % 3), price: 1999 + (i % 500) },
      { sku: sku(2), qty: 1, price: 4550 },
      { sku: sku(3), qty: 2, price: 799 },
    ],
    prefs: { theme: i % 2 ? 'dark' : 'light', lang: 'en-GB', currency: 'EUR' },
    n: 0,
    r: 0,
  };
}

/** The body of GET /read (and of POST /write): the same shape for every stack. */
export function readBody(d: Partial<ShopSession> | undefined): string {
  return `{"n":${Number(d?.n ?? 0)},"r":${Number(d?.r ?? 0)},"items":${d?.cart?.length ?? 0}}`;
}

export function loginUser(i: number): string {
  return `user-${i % 500}`;
}

/** The random wait inside the race route: 1–5 ms, like a database call between read and write. */
export function raceDelay(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 4));
}

/** Secrets shared by every stack (each needs ≥32 characters). */
export const BENCH_SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';

/** A stand-in cookie for stacks without sessions, as long as a real one so every stack parses the same bytes. */
export const DUMMY_COOKIE = 'sid=' + 'x'.repeat(43) + '.' + 'y'.repeat(43);
export const DUMMY_CSRF = 'z'.repeat(43);
