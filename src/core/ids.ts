/**
 * Session IDs: 256 bits from the CSPRNG, base64url; the store only ever sees their SHA-256.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';

/** 32 random bytes as base64url: 43 characters. */
export function generateId(): string {
  return randomBytes(32).toString('base64url');
}

/** What a session ID may look like: base64url, 22 (128 bits) to 128 characters. Checked before any lookup. */
const ID_FORMAT = /^[A-Za-z0-9_-]{22,128}$/;

export function isWellFormedId(id: string): boolean {
  return ID_FORMAT.test(id);
}

/** The store key of a session ID: SHA-256, base64url. A store dump yields no usable cookie. */
export function hashId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/** A short opaque handle for a store key, safe to show to its owner (session lists): not the cookie, not the key. */
export function handleOf(key: string): string {
  return createHash('sha256').update('handle:').update(key).digest('base64url').slice(0, 22);
}

/** The store key of a user's context record. */
export function userContextKey(userId: string): string {
  return 'user:' + createHash('sha256').update(userId).digest('base64url');
}
