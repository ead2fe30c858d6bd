/**
 * How a session record sits in a Redis hash, and how a read turns back into a SessionRecord.
 *
 * Fields are one letter each (they are stored once per session and sent on every read):
 * `d` data, `v` version, `u` userId (absent when anonymous), `c` createdAt, `l` lastSeenAt,
 * `e` expiresAt, `a` absoluteExpiresAt. A read is `HMGET <key> d v u c l e a`.
 * @module
 */
import type { SessionRecord } from '../../core/store.js';

/** The reply of `HMGET <key> d v u c l e a`. */
export type Row = Array<string | null>;

/** A record, or null when the hash is absent or past either deadline at `now` (the store clock's). */
export function decode(key: string, row: Row, now: number): SessionRecord | null {
  const version = row[1];
  if (version === null || version === undefined) return null;
  const expiresAt = Number(row[5]);
  const absoluteExpiresAt = Number(row[6]);
  if (expiresAt <= now || absoluteExpiresAt <= now) return null;
  return {
    key,
    data: row[0] ?? '',
    version: Number(version),
    userId: row[2] ?? null,
    createdAt: Number(row[3]),
    lastSeenAt: Number(row[4]),
    expiresAt,
    absoluteExpiresAt,
  };
}
