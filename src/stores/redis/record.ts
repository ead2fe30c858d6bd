/**
 * How a session record sits in one Redis string, and how a read turns back into a SessionRecord.
 *
 * A fixed-width ASCII header, then the owner, then the data, so a read is one `GET` and one bulk
 * reply, and the scripts read or patch the header with `GETRANGE` / `SETRANGE` without touching
 * the data. A string also costs Redis far less memory than a hash (a hash whose data field exceeds
 * 64 bytes leaves the compact listpack encoding for a full hashtable).
 *
 * | bytes   | content                                         |
 * |---------|-------------------------------------------------|
 * | 0–15    | version, 16 decimal digits, zero-padded          |
 * | 16–31   | createdAt (epoch ms, same format)               |
 * | 32–47   | lastSeenAt                                      |
 * | 48–63   | expiresAt                                       |
 * | 64–79   | absoluteExpiresAt                               |
 * | 80      | `u` when there is an owner, `-` when anonymous  |
 * | 81–88   | owner length in UTF-8 bytes (for the scripts)   |
 * | 89–96   | owner length in UTF-16 code units (for JS)      |
 * | 97…     | owner, then data                                |
 * @module
 */
import { decimal } from '../../core/decimal.js';
import type { SessionRecord } from '../../core/store.js';

/** Bytes before the owner; the scripts in scripts.ts use the same offsets. */
export const HEADER_BYTES = 97;
const ZEROS = '0000000000000000';

/** A whole, non-negative number as 16 digits; anything else cannot be stored in the fixed header. */
export function digits16(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`RedisStore stores ${what} as a whole, non-negative number (got ${n})`);
  }
  const s = decimal(n);
  return ZEROS.slice(s.length) + s;
}

function digits8(n: number): string {
  const s = String(n);
  return ZEROS.slice(8 + s.length) + s;
}

/** The stored string for `record`. */
export function encode(record: SessionRecord): string {
  const { userId } = record;
  const head = digits16(record.version, 'version') + digits16(record.createdAt, 'createdAt')
    + digits16(record.lastSeenAt, 'lastSeenAt') + digits16(record.expiresAt, 'expiresAt')
    + digits16(record.absoluteExpiresAt, 'absoluteExpiresAt');
  if (userId === null) return `${head}-0000000000000000${record.data}`;
  return `${head}u${digits8(Buffer.byteLength(userId))}${digits8(userId.length)}${userId}${record.data}`;
}

/** A record, or null when the value is absent or past either deadline at `now` (the store clock's). */
export function decode(key: string, value: string | null, now: number): SessionRecord | null {
  if (value === null || value.length < HEADER_BYTES) return null;
  const expiresAt = Number(value.slice(48, 64));
  const absoluteExpiresAt = Number(value.slice(64, 80));
  if (expiresAt <= now || absoluteExpiresAt <= now) return null;
  // charCode 117 is 'u'.
  const ownerUnits = value.charCodeAt(80) === 117 ? Number(value.slice(89, 97)) : -1;
  const dataStart = HEADER_BYTES + (ownerUnits < 0 ? 0 : ownerUnits);
  return {
    key,
    data: value.slice(dataStart),
    version: Number(value.slice(0, 16)),
    userId: ownerUnits < 0 ? null : value.slice(HEADER_BYTES, dataStart),
    createdAt: Number(value.slice(16, 32)),
    lastSeenAt: Number(value.slice(32, 48)),
    expiresAt,
    absoluteExpiresAt,
  };
}
