/**
 * The per-session gate: in one process, requests that may write a session run their session
 * section one at a time, in arrival order. Read-only access never takes it.
 *
 * Each key in the map is held (its value: null, or the queue of requests waiting for it) or free
 * (FREE). Taking a free key costs one release function and no promise: only a request that has to
 * wait gets one, resolved when the holder before it releases. Released keys stay, free, up to
 * `freeLimit` of them (kept-map.ts), so a session's next write takes the same entry again.
 * @module
 */
import { SessionBusyError } from './errors.js';
import { KeptMap } from './kept-map.js';

export type Release = () => void;

/** A request waiting for its turn; `wake` hands it the key, unless it gave up (timed out) first. */
interface Turn {
  wake: (release: Release) => void;
  gaveUp: boolean;
}

/** A key no one holds (kept so that its next holding reuses its entry). */
const FREE = 0;

/** Free keys kept at most, by default: about what a server writes to in a few seconds. */
export const GATE_FREE_KEYS = 4096;

export class SessionGate {
  /** Keys → FREE, or held: null, or the turns waiting, oldest first. */
  readonly #queues: KeptMap<string, Turn[] | null | typeof FREE>;
  #waiting = 0;
  #holding = 0;

  constructor(freeLimit = GATE_FREE_KEYS) {
    this.#queues = new KeptMap(freeLimit, (state) => state === FREE);
  }

  /** Requests queued behind a holder, across keys. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Requests holding a key, across keys (at most one per key). */
  get holding(): number {
    return this.#holding;
  }

  /** Keys in the map, held or free (at most the holders plus the free limit). */
  get size(): number {
    return this.#queues.size;
  }

  /** Holds `key` at once when no one holds or awaits it (no promise to wait for); null otherwise. */
  tryAcquire(key: string): Release | null {
    const state = this.#queues.get(key);
    if (state === FREE) this.#queues.resume();
    else if (state !== undefined) return null;
    this.#queues.set(key, null);
    this.#holding++;
    return this.#releaser(key);
  }

  /** Waits for every earlier holder of `key`, then holds it until `release()` is called. */
  async acquire(key: string, timeoutMs: number): Promise<Release> {
    let queue = this.#queues.get(key);
    if (queue === undefined || queue === FREE) return this.tryAcquire(key)!;
    if (queue === null) this.#queues.set(key, (queue = []));
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
        this.#waiting--;
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
      this.#holding--;
      const queue = this.#queues.get(key) as Turn[] | null;
      let next = queue?.shift();
      while (next !== undefined && next.gaveUp) next = queue!.shift();
      if (next !== undefined) {
        this.#holding++;
        next.wake(this.#releaser(key));
        return;
      }
      this.#queues.set(key, FREE);
      this.#queues.rest();
    };
  }
}
