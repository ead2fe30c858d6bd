/**
 * Three-way merge of JSON session data: how plain property assignments on an express-session style
 * `req.session` are re-applied to fresh data after a compare-and-set conflict, without losing either
 * writer's change and without silently picking one.
 * @module
 */
import { SessionConflictError } from '../../core/errors.js';

/** Marks a key that is absent on one side of the merge. */
const ABSENT: unique symbol = Symbol('absent');
type Side = unknown;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Structural equality of JSON values; object key order does not matter. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.hasOwn(bo, k) || !jsonEqual(ao[k], bo[k])) return false;
  }
  return true;
}

const at = (o: Record<string, unknown>, k: string): Side => (Object.hasOwn(o, k) ? o[k] : ABSENT);

/**
 * The rule, per value, recursively through plain objects:
 * - one side left it as it was loaded → the other side's value wins;
 * - both changed a plain object → merge its keys the same way (an object both created counts as `{}` before);
 * - both changed anything else (a number, a string, an array, a key's presence) → a conflict:
 *   SESSION_CONFLICT, never a silent last-writer-wins. This holds even when both wrote the same value:
 *   two requests that each turned `views: 1` into `views: 2` made two increments, and a plain
 *   assignment cannot tell an increment from an idempotent set.
 */
function merge(base: Side, mine: Side, theirs: Side, path: string): Side {
  if (jsonEqual(mine, base)) return theirs;
  if (jsonEqual(theirs, base)) return mine;
  if (isPlainObject(mine) && isPlainObject(theirs) && (base === ABSENT || isPlainObject(base))) {
    const b = base === ABSENT ? {} : base;
    const out: Record<string, unknown> = {};
    const keys = new Set([...Object.keys(theirs), ...Object.keys(mine)]);
    for (const k of keys) {
      const v = merge(at(b, k), at(mine, k), at(theirs, k), path ? `${path}.${k}` : k);
      if (v !== ABSENT) out[k] = v;
    }
    return out;
  }
  throw new SessionConflictError(`req.session.${path} was changed by another request at the same time; retry`);
}

/**
 * Merges the request's change (`base` → `mine`) into `theirs` (what the store holds now).
 * Throws SESSION_CONFLICT when both changed the same value differently.
 */
export function merge3(base: Record<string, unknown>, mine: Record<string, unknown>, theirs: Record<string, unknown>): Record<string, unknown> {
  return merge(base, mine, theirs, '') as Record<string, unknown>;
}

/** Replaces the contents of `target` in place (the engine replays into the object it passes). */
export function replaceContents(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const k of Object.keys(target)) delete target[k];
  for (const [k, v] of Object.entries(source)) target[k] = v;
}

/** A detached JSON copy: what the store will hold (Dates become strings, undefined and functions vanish). */
export function jsonClone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
