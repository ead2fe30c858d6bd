/**
 * The per-session gate: in one process, requests that may write a session run their session
 * section one at a time, in arrival order. Read-only access never takes it.
 * @module
 */
import { SessionBusyError } from './errors.js';

export type Release = () => void;

export class SessionGate {
  /** The tail of each key's queue: resolves when the last holder releases. */
  readonly #tails = new Map<string, Promise<void>>();
  #waiting = 0;

  /** Requests queued or holding, across keys. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Holds `key` at once when no one holds or awaits it (no promise to wait for); null otherwise. */
  tryAcquire(key: string): Release | null {
    return this.#tails.has(key) ? null : this.#enter(key).done;
  }

  /** Waits for every earlier holder of `key`, then holds it until `release()` is called. */
  async acquire(key: string, timeoutMs: number): Promise<Release> {
    const { previous, done } = this.#enter(key);
    if (previous) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([previous.then(() => 'ready' as const), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        // Our turn still comes (the chain must not break); give it away at once.
        void previous.then(done);
        throw new SessionBusyError(timeoutMs);
      }
    }
    return done;
  }

  /** Joins the end of `key`'s queue: the holder before us (if any) and our release. */
  #enter(key: string): { previous: Promise<void> | undefined; done: Release } {
    const previous = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous ? previous.then(() => mine) : mine;
    this.#tails.set(key, tail);
    this.#waiting++;
    let released = false;
    const done: Release = () => {
      if (released) return;
      released = true;
      this.#waiting--;
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    return { previous, done };
  }
}
