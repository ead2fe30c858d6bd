/**
 * Sessions this process served within their idle timeout: the "live sessions on this node" figure of
 * the admin page and metrics. A remembered session ("keep me signed in") lives for the longer idle
 * timeout of remembered sessions, so it is counted for that long. Bounded: at most `max` handles, the
 * least recently seen dropped first.
 * @module
 */

import cluster from 'node:cluster';

/**
 * The cluster message that tells the other workers to forget sessions that ended in this one: a
 * session ends in whichever worker answers the request that ends it (a logout, a login's regeneration,
 * "log out everywhere"), which is not always one that served it before.
 */
export interface ForgetMessage {
  type: 'shop:active-forget';
  /** One session, by handle; or, without it, every session of `userId`. */
  handle?: string;
  userId?: string;
}

export function isForgetMessage(msg: unknown): msg is ForgetMessage {
  const m = msg as Partial<ForgetMessage> | null;
  return typeof m === 'object' && m !== null && m.type === 'shop:active-forget'
    && (typeof m.handle === 'string' || typeof m.userId === 'string');
}

/** Primary: passes each worker's ForgetMessage on to every other worker. */
export function relayForgets(): void {
  cluster.on('message', (from, msg: unknown) => {
    if (!isForgetMessage(msg)) return;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker && worker !== from && worker.isConnected()) worker.send(msg, (err: Error | null) => void err);
    }
  });
}

/** How many ended sessions' handles a node remembers (see ActiveSessions.ended). */
const ENDED_KEPT = 4096;

interface Seen {
  at: number;
  userId: string | null;
}

export class ActiveSessions {
  readonly #windowMs: number;
  readonly #rememberedWindowMs: number;
  readonly #max: number;
  /**
   * handle → last seen (ms) and owner, ordinary and remembered sessions apart: insertion order is
   * recency order, so within one window each map expires from its front.
   */
  readonly #seen = new Map<string, Seen>();
  readonly #remembered = new Map<string, Seen>();
  /**
   * user → the handles of theirs in either map: "log out everywhere" reports one `destroyed` message
   * for all of a user's sessions (handle '*'), which names the user only.
   */
  readonly #byUser = new Map<string, Set<string>>();

  /** `windowMs`: the idle timeout; `rememberedWindowMs`: that of remembered sessions. */
  constructor(windowMs: number, rememberedWindowMs: number, max = 200_000) {
    this.#windowMs = windowMs;
    this.#rememberedWindowMs = rememberedWindowMs;
    this.#max = max;
  }

  /**
   * Sessions ended lately, by handle: a request of one that was in flight as it ended (in another
   * worker, whose message may come first) must not count it again. Bounded, the oldest dropped first.
   */
  readonly #ended = new Set<string>();

  seen(handle: string, userId: string | null, remembered: boolean, now = Date.now()): void {
    if (this.#ended.has(handle)) return;
    this.forget(handle);
    (remembered ? this.#remembered : this.#seen).set(handle, { at: now, userId });
    if (userId !== null) {
      let handles = this.#byUser.get(userId);
      if (!handles) this.#byUser.set(userId, (handles = new Set()));
      handles.add(handle);
    }
    if (this.#seen.size + this.#remembered.size > this.#max) this.#forgetOldest();
  }

  forget(handle: string): void {
    const entry = this.#seen.get(handle) ?? this.#remembered.get(handle);
    if (!entry) return;
    this.#seen.delete(handle);
    this.#remembered.delete(handle);
    if (entry.userId === null) return;
    const handles = this.#byUser.get(entry.userId)!;
    handles.delete(handle);
    if (handles.size === 0) this.#byUser.delete(entry.userId);
  }

  /** The session ended (a logout, a login's new ID): forgotten, and not counted again if seen late. */
  ended(handle: string): void {
    this.forget(handle);
    this.#ended.add(handle);
    if (this.#ended.size > ENDED_KEPT) this.#ended.delete(this.#ended.values().next().value!);
  }

  /** Forgets every session of the user (their sessions were ended all at once). */
  forgetUser(userId: string): void {
    for (const handle of this.#byUser.get(userId) ?? []) this.forget(handle);
  }

  count(now = Date.now()): number {
    this.#expire(this.#seen, this.#windowMs, now);
    this.#expire(this.#remembered, this.#rememberedWindowMs, now);
    return this.#seen.size + this.#remembered.size;
  }

  #expire(seen: Map<string, Seen>, windowMs: number, now: number): void {
    for (const [handle, { at }] of seen) {
      if (now - at < windowMs) break;
      this.forget(handle);
    }
  }

  #forgetOldest(): void {
    const ordinary = this.#seen.entries().next().value;
    const remembered = this.#remembered.entries().next().value;
    const oldest = !remembered || (ordinary && ordinary[1].at <= remembered[1].at) ? ordinary : remembered;
    if (oldest) this.forget(oldest[0]);
  }
}
