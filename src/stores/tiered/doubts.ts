/**
 * What TieredStore cannot know of its own failed writes: a set, touch, destroy, regeneration,
 * destroyByUser or destroyAll that failed without saying what it did (a timeout, a connection lost
 * with the command sent). The shared store may still apply it, at any later time (a server that
 * resumes, a network that delivers what it held), and its feed need not tell this tier: RedisStore
 * reports a write to its own listeners only once it is acknowledged, and Redis never sends a client
 * what that client published. A copy fetched before such a write lands would then be served until
 * something else changed its key.
 *
 * So while a write is in doubt, nothing it may yet change is kept locally (reads of it go to the
 * shared store), until a fetched record shows that it can no longer land or has landed:
 * - a set (or either record of a regeneration) that left version V: a record at V or later (the write
 *   is there, or compare-and-set refuses it now); no record at all, unless it was a creation (an
 *   update compares against a record that is gone); or a later set of the key through this tier;
 * - a touch of version T: a record past T, or at T with the touch's deadline; no record;
 * - a destroy: no record (it can only delete what is gone), or a later destroy through this tier;
 * - a destroyByUser: records of that owner, until one through this tier succeeds;
 * - a destroyAll: every session record, until one through this tier succeeds.
 * The last two are settled by the call the app makes again after the failure ("log out everywhere",
 * ending every session), not by evidence: an old one landing later could still end sessions made
 * since, which this tier would not hear of; that needs a server that held a command longer than the
 * app took to repeat it.
 *
 * Bounded: at most MAX_KEYS keys and MAX_USERS owners are held, the oldest forgotten first; a
 * forgotten doubt leaves its key cached as before this module.
 * @module
 */
import { isSessionKey } from '../../core/store.js';
import type { SessionRecord } from '../../core/store.js';

/** Keys in doubt kept at most. */
const MAX_KEYS = 10_000;
/** Owners in doubt (failed destroyByUser) kept at most. */
const MAX_USERS = 1_000;
/** Doubts kept per key; the oldest go first (a key whose writes keep failing). */
const MAX_PER_KEY = 4;

/** One failed write of a key: what a fetched record must show for the write to be settled. */
interface Doubt {
  kind: 'set' | 'touch' | 'destroy';
  /** A record at this version or later settles it (Infinity: none does). */
  from: number;
  /** A touch's deadline: a record with it (at the version touched, when named) shows that the touch landed. */
  touched?: number;
  /** A creation: a key with no record does not settle it (the creation may still land). */
  creates?: boolean;
}

type Fetched = Pick<SessionRecord, 'key' | 'version' | 'expiresAt' | 'userId'>;

export class Doubts {
  readonly #keys = new Map<string, Doubt[]>();
  readonly #users = new Map<string, true>();
  #all = false;

  /** True when nothing is in doubt: the tier's common case, checked first. */
  get none(): boolean {
    return this.#keys.size === 0 && this.#users.size === 0 && !this.#all;
  }

  /** A set (or a regeneration's record) of `key` leaving `version` failed with its outcome unknown. */
  setFailed(key: string, version: number, expectedVersion: number): void {
    this.#add(key, { kind: 'set', from: version, creates: expectedVersion === 0 });
  }

  /** A touch of `key` (of `version`, when named) to `expiresAt` failed with its outcome unknown. */
  touchFailed(key: string, expiresAt: number, version: number | undefined): void {
    // Without a version the touch may apply to any record: only its own deadline shows it landed.
    this.#add(key, { kind: 'touch', from: version === undefined ? Infinity : version + 1, touched: expiresAt });
  }

  /** A destroy of `key` failed with its outcome unknown. */
  destroyFailed(key: string): void {
    this.#add(key, { kind: 'destroy', from: Infinity });
  }

  /** A destroyByUser of `userId` failed with its outcome unknown. */
  userFailed(userId: string): void {
    this.#users.delete(userId);
    this.#users.set(userId, true);
    if (this.#users.size > MAX_USERS) this.#users.delete(this.#users.keys().next().value!);
  }

  /** A destroyAll failed with its outcome unknown. */
  allFailed(): void {
    this.#all = true;
  }

  /** A set of `key` through the tier succeeded: the version moved past every failed set and touch of it. */
  written(key: string): void {
    this.#keep(key, (d) => d.kind === 'destroy');
  }

  /** A destroy of `key` through the tier succeeded: what failed before can neither bring it back nor end it again. */
  destroyed(key: string): void {
    this.#keys.delete(key);
  }

  userDestroyed(userId: string): void {
    this.#users.delete(userId);
  }

  allDestroyed(): void {
    this.#all = false;
  }

  /** The shared store holds no live record of `key`: failed updates, touches and destroys of it are settled. */
  absent(key: string): void {
    this.#keep(key, (d) => d.creates === true);
  }

  /**
   * Whether `rec`, fetched from the shared store or written there through the tier, may be kept
   * locally; the doubts of its key that it settles are dropped.
   */
  allows(rec: Fetched): boolean {
    if (this.#all && isSessionKey(rec.key)) return false;
    if (rec.userId !== null && this.#users.has(rec.userId)) return false;
    if (!this.#keys.has(rec.key)) return true;
    return this.#keep(rec.key, (d) => !settles(rec, d));
  }

  /** Keeps the doubts of `key` that `open` holds to; true when none is left. */
  #keep(key: string, open: (d: Doubt) => boolean): boolean {
    const list = this.#keys.get(key);
    if (!list) return true;
    const left = list.filter(open);
    if (left.length === 0) {
      this.#keys.delete(key);
      return true;
    }
    if (left.length !== list.length) this.#keys.set(key, left);
    return false;
  }

  #add(key: string, doubt: Doubt): void {
    const list = this.#keys.get(key);
    if (list) {
      list.push(doubt);
      if (list.length > MAX_PER_KEY) list.shift();
      return;
    }
    this.#keys.set(key, [doubt]);
    if (this.#keys.size > MAX_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
  }
}

/** Whether a record of the key shows that the failed write has landed or never will. */
function settles(rec: Fetched, d: Doubt): boolean {
  if (rec.version >= d.from) return true;
  return d.kind === 'touch' && rec.expiresAt === d.touched && (d.from === Infinity || rec.version === d.from - 1);
}
