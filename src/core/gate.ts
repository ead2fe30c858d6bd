/**
 * The per-session gate: in one process, requests that may write a session run their session
 * section one at a time, in arrival order. Read-only access never takes it.
 *
 * Each key in the map is held (its value: null, or the queue of requests waiting for it) or free
 * (FREE). Taking a free key costs one release function and no promise: only a request that has to
 * wait gets one, resolved when the holder before it releases.
 *
 * A released key stays in the map, marked free, until more than `freeLimit` are: deleting it and
 * inserting it again at the session's next write would leave a hole in V8's hash table each time,
 * so that the table rehashes every few writes, and a map that runs empty reallocates its table at
 * every release (`Runtime_MapShrink`, ≈ 6 % of a write over MemoryStore in-process). Past the limit
 * the oldest entries that are free leave first.
 * @module
 */
import { SessionBusyError } from './errors.js';
import { OldestFirst } from './oldest-first.js';

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
  readonly #queues = new Map<string, Turn[] | null | typeof FREE>();
  readonly #oldest = new OldestFirst<string, Turn[] | null | typeof FREE>();
  readonly #freeLimit: number;
  #free = 0;
  #waiting = 0;

  constructor(freeLimit = GATE_FREE_KEYS) {
    this.#freeLimit = freeLimit;
  }

  /** Requests queued or holding, across keys. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Keys in the map, held or free (at most the holders plus the free limit). */
  get size(): number {
    return this.#queues.size;
  }

  /** Holds `key` at once when no one holds or awaits it (no promise to wait for); null otherwise. */
  tryAcquire(key: string): Release | null {
    const state = this.#queues.get(key);
    if (state === FREE) this.#free--;
    else if (state !== undefined) return null;
    this.#queues.set(key, null);
    this.#waiting++;
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
      const queue = this.#queues.get(key) as Turn[] | null;
      let next = queue?.shift();
      while (next !== undefined && next.gaveUp) next = queue!.shift();
      if (next !== undefined) {
        next.wake(this.#releaser(key));
        return;
      }
      this.#queues.set(key, FREE);
      if (++this.#free > this.#freeLimit) this.#dropOldestFree();
    };
  }

  /** Removes the oldest free key; held ones passed on the way go back in, at the end. */
  #dropOldestFree(): void {
    for (;;) {
      const [key, state] = this.#oldest.shift(this.#queues)!;
      if (state === FREE) {
        this.#free--;
        return;
      }
      this.#queues.set(key, state);
    }
  }
}
