/**
 * Session IDs: 256 bits from the CSPRNG, base64url; the store only ever sees their SHA-256.
 * @module
 */
import * as crypto from 'node:crypto';
import { randomFillSync } from 'node:crypto';
import { UserIdInvalidError } from './errors.js';

/** Node's one-shot `crypto.hash` (Node ≥ 20.12), or undefined on an older Node. */
export const oneShotHash = typeof crypto.hash === 'function' ? crypto.hash : undefined;

/**
 * SHA-256 of a string (UTF-8) in base64url. Runs on every request that carries a cookie: the one-shot
 * `crypto.hash` costs a fraction of building a Hash object; older Nodes take createHash.
 */
const sha256: (text: string) => string = oneShotHash !== undefined
  ? (text) => oneShotHash('sha256', text, 'base64url')
  : (text) => crypto.createHash('sha256').update(text).digest('base64url');

/**
 * CSPRNG bytes drawn 2 KiB at a time: each call into the CSPRNG costs ≈ 1.6 µs here whatever its size
 * up to a few KiB (randomBytes(32) ≈ 2–6 µs), so a login, which needs an ID and a CSRF token, drew
 * twice that per request. The same batching as Node's `crypto.randomUUID`, whose cache is 2 KiB too:
 * ≈ 27 ns per token drawn instead of ≈ 200 with a 256-byte pool. At most 63 unused tokens wait in
 * memory, beside the secrets that sign them.
 */
const POOL_BYTES = 2048;
const TOKEN_BYTES = 32;
const pool = Buffer.alloc(POOL_BYTES);
let poolAt = POOL_BYTES;

/** 32 random bytes from the CSPRNG as base64url (43 characters): session IDs and CSRF tokens. */
export function randomToken(): string {
  if (poolAt + TOKEN_BYTES > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const token = pool.toString('base64url', poolAt, poolAt + TOKEN_BYTES);
  poolAt += TOKEN_BYTES;
  return token;
}

/** `n` random bytes (at most 32) from the same pool, in a buffer of their own: the IVs of seal.ts. */
export function randomPoolBytes(n: number): Buffer {
  if (poolAt + n > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = Buffer.from(pool.subarray(poolAt, poolAt + n));
  poolAt += n;
  return out;
}

/** A new session ID: 256 random bits as base64url, 43 characters. */
export function generateId(): string {
  return randomToken();
}

/** What a session ID may look like: base64url, 22 (128 bits) to 128 characters. Checked before any lookup. */
const ID_FORMAT = /^[A-Za-z0-9_-]{22,128}$/;

export function isWellFormedId(id: string): boolean {
  return ID_FORMAT.test(id);
}

/** The store key of a session ID: SHA-256, base64url. A store dump yields no usable cookie. */
export function hashId(id: string): string {
  return sha256(id);
}

/** A short opaque handle for a store key, safe to show to its owner (session lists): not the cookie, not the key. */
export function handleOf(key: string): string {
  return sha256('handle:' + key).slice(0, 22);
}

/**
 * Longest user ID accepted, in UTF-8 bytes (as stores keep it; 1,024 ASCII characters, fewer in other
 * scripts): an email address or an account number fits many times over, and every store can index it
 * (PostgreSQL's B-tree takes at most 2,704 bytes per entry).
 */
export const MAX_USER_ID_BYTES = 1024;

/** A lone surrogate (ill-formed UTF-16) or U+0000, which no store can keep apart from another ID. */
const UNSTORABLE = /[\p{Cs}\0]/u;

/**
 * Returns `userId` if every store can keep it apart from any other (see UserIdInvalidError), else
 * throws UserIdInvalidError.
 */
export function checkUserId(userId: unknown): string {
  if (typeof userId !== 'string') throw new UserIdInvalidError(`expected a string, got ${userId === null ? 'null' : typeof userId}`);
  if (userId.length === 0) throw new UserIdInvalidError('empty');
  // A UTF-16 unit is at most 3 UTF-8 bytes: only an ID of over a third of the bound is measured.
  const bytes = userId.length > MAX_USER_ID_BYTES / 3 ? Buffer.byteLength(userId, 'utf8') : userId.length;
  if (bytes > MAX_USER_ID_BYTES) throw new UserIdInvalidError(`${bytes} bytes as UTF-8, over ${MAX_USER_ID_BYTES}`);
  if (UNSTORABLE.test(userId)) throw new UserIdInvalidError('it holds U+0000 or a lone surrogate (not well-formed UTF-16)');
  return userId;
}

/** The store key of a user's context record. */
export function userContextKey(userId: string): string {
  return 'user:' + sha256(userId);
}
