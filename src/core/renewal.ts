/**
 * What a record whose ID renewal replaced holds (`renewal`, OWASP's renewal timeout): for the grace,
 * the old key names the session's new ID, sealed with a key only the old ID gives (AES-256-GCM under
 * HKDF-SHA-256 of it). A request that presents the old cookie in the grace, sent before the new one
 * arrived or whose answer carrying it was lost, opens the session and is given the new cookie, as
 * PHP's `session_regenerate_id` documentation advises for unstable networks; the store, which only
 * ever sees hashes of IDs, cannot read which ID it is.
 * @module
 */
import { hkdfSync } from 'node:crypto';
import { hashId } from './ids.js';
import { seal, unseal } from './seal.js';
import type { SessionRecord } from './store.js';

/**
 * The start of such a record's data: valid JSON (a string), like ENDED, so stores that check their
 * data accept it, and never a codec envelope.
 */
const MOVED = '"tether:moved:';
const INFO = 'tether session renewal';

function keyOf(oldId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', oldId, '', INFO, 32));
}

/** The data of the record under the old ID's key: the new ID, sealed with the old one. */
export function movedData(oldId: string, newId: string): string {
  return `${MOVED}${seal(keyOf(oldId), newId).toString('base64url')}"`;
}

/** Whether a record's data is such a pointer. */
export function isMoved(data: string): boolean {
  return data.startsWith(MOVED);
}

/**
 * The start of a pointer's data, for the stores' `count()` and `destroyAll()`, which leave pointers out:
 * a pointer is the session's old name, the session being counted under its new key. A store knows one
 * by an owner of null, a lastSeenAt equal to its deadline (how the pointer is written, and what no
 * session a request touched has) and data with this start, read only when the rest says it could be
 * one. A constant with no character a single-quoted SQL literal or a Lua string would need escaped.
 */
export const MOVED_PREFIX = MOVED;

/** Whether a whole record is a renewal's pointer, as MOVED_PREFIX tells one. */
export function isPointer(record: Pick<SessionRecord, 'data' | 'userId' | 'lastSeenAt' | 'expiresAt'>): boolean {
  return record.userId === null && record.lastSeenAt === record.expiresAt && isMoved(record.data);
}

/**
 * The new ID, and its store key, that a pointer names for a request presenting `oldId` at `now`; null
 * past the pointer's deadline (the grace), or when it does not open with that ID.
 */
export function pointedTo(pointer: SessionRecord, oldId: string | null, now: number): { id: string; key: string } | null {
  const id = oldId === null || now >= pointer.expiresAt ? null : movedId(pointer.data, oldId);
  return id === null ? null : { id, key: hashId(id) };
}

/** The new ID a pointer names, opened with the old ID; null when it does not open with that ID. */
export function movedId(data: string, oldId: string): string | null {
  if (!isMoved(data) || !data.endsWith('"')) return null;
  return unseal(keyOf(oldId), Buffer.from(data.slice(MOVED.length, -1), 'base64url'));
}
