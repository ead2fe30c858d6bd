/**
 * Sessions this process served within the idle window: the "live sessions on this node" figure of the
 * admin page and metrics. Bounded: at most `max` handles, the least recently seen dropped first.
 * @module
 */

interface Seen {
  at: number;
  userId: string | null;
}

export class ActiveSessions {
  readonly #windowMs: number;
  readonly #max: number;
  /** handle → last seen (ms) and owner; insertion order is recency order. */
  readonly #seen = new Map<string, Seen>();
  /**
   * user → the handles of theirs in #seen: "log out everywhere" reports one `destroyed` message for all
   * of a user's sessions (handle '*'), which names the user only.
   */
  readonly #byUser = new Map<string, Set<string>>();

  constructor(windowMs: number, max = 200_000) {
    this.#windowMs = windowMs;
    this.#max = max;
  }

  seen(handle: string, userId: string | null, now = Date.now()): void {
    this.forget(handle);
    this.#seen.set(handle, { at: now, userId });
    if (userId !== null) {
      let handles = this.#byUser.get(userId);
      if (!handles) this.#byUser.set(userId, (handles = new Set()));
      handles.add(handle);
    }
    if (this.#seen.size > this.#max) this.forget(this.#seen.keys().next().value!);
  }

  forget(handle: string): void {
    const entry = this.#seen.get(handle);
    if (!entry) return;
    this.#seen.delete(handle);
    if (entry.userId === null) return;
    const handles = this.#byUser.get(entry.userId)!;
    handles.delete(handle);
    if (handles.size === 0) this.#byUser.delete(entry.userId);
  }

  /** Forgets every session of the user (their sessions were ended all at once). */
  forgetUser(userId: string): void {
    for (const handle of this.#byUser.get(userId) ?? []) this.forget(handle);
  }

  count(now = Date.now()): number {
    for (const [handle, { at }] of this.#seen) {
      if (now - at < this.#windowMs) break;
      this.forget(handle);
    }
    return this.#seen.size;
  }
}
