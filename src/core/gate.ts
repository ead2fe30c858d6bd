/**
 * The per-session gate: in one process, requests that may write a session run their session
 * section one at a time, in arrival order. Read-only access never takes it.
 *
 * A key is held while it is in the map; its value is the queue of requests waiting for it. Taking a
 * free key costs one map entry and one release function, no promise: only a request that has to
 * wait gets one, resolved when the holder before it releases.
 * @module
 */
import { SessionBusyError } from './errors.js';

export type Release = () => void;

/** A request waiting for its turn; `wake` hands it the key, unless it gave up (timed out) first. */
interface Turn {
  wake: (release: Release) => void;
  gaveUp: boolean;
}

export class SessionGate {
  /** Held keys → the turns waiting for each, oldest first. */
  readonly #queues = new Map<string, Turn[]>();
  #waiting = 0;

  /** Requests queued or holding, across keys. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Holds `key` at once when no one holds or awaits it (no promise to wait for); null otherwise. */
  tryAcquire(key: string): Release | null {
    if (this.#queues.has(key)) return null;
    this.#queues.set(key, []);
    this.#waiting++;
    return this.#releaser(key);
  }

  /** Waits for every earlier holder of `key`, then holds it until `release()` is called. */
  async acquire(key: string, timeoutMs: number): Promise<Release> {
    const queue = this.#queues.get(key);
    if (queue === undefined) return this.tryAcquire(key)!;
    this.#waiting++;
    const turn: Turn = { wake: () => {}, gaveUp: false };
    const granted = new Promise<Release | null>((resolve) => {
      const timer = setTimeout(() => {
        // Still queued (a woken turn has cleared its timer): it is skipped when it comes, and fails now.
        turn.gaveUp = true;
        this.#waiting--;
        resolve(null);
      }, timeoutMs);
      turn.wake = (release) => {
        clearTimeout(timer);
        resolve(release);
      };
    });
    queue.push(turn);
    const release = await granted;
    if (release === null) throw new SessionBusyError(timeoutMs);
    return release;
  }

  /** The release of one holding of `key`: hands the key to the next waiting turn, or frees it. Runs once. */
  #releaser(key: string): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#waiting--;
      const queue = this.#queues.get(key)!;
      let next = queue.shift();
      while (next !== undefined && next.gaveUp) next = queue.shift();
      if (next === undefined) this.#queues.delete(key);
      else next.wake(this.#releaser(key));
    };
  }
}
