/**
 * Bounds every store call: a store that does not answer in time fails the request closed with
 * STORE_UNAVAILABLE instead of hanging it.
 * @module
 */
import { StoreUnavailableError, isTetherError } from './errors.js';

export interface DeadlineOptions {
  /** Runs once for every call that fails or times out (the engine counts store errors). */
  onFailure?: () => void;
  /** The message of a call past its deadline; it names the option that sets the bound. */
  late?: (what: string, ms: number) => string;
  /** Reject with a failed call's own error, unwrapped (a store that words its errors itself). @default false */
  passErrors?: boolean;
}

interface Pending {
  at: number;
  what: string;
  reject: (err: unknown) => void;
}

/**
 * Deadlines for store calls that all share one bound. Every request makes at least one store call,
 * so instead of a timer per call (an insert into and a removal from Node's timer lists each time)
 * pending calls sit in a set in deadline order, and one ticker, running only while calls are
 * pending, fails those past their deadline. A call fails at most one tick (a tenth of the bound,
 * at most 100 ms) after its deadline.
 */
export class Deadlines {
  readonly #ms: number;
  readonly #tickMs: number;
  /** Insertion order is deadline order: every call gets the same bound. */
  readonly #pending = new Set<Pending>();
  readonly #onFailure: () => void;
  readonly #late: (what: string, ms: number) => string;
  readonly #passErrors: boolean;
  #ticker: NodeJS.Timeout | undefined;

  constructor(ms: number, options: DeadlineOptions = {}) {
    this.#ms = ms;
    this.#onFailure = options.onFailure ?? (() => {});
    this.#late = options.late ?? ((what, bound) => `the session store did not answer ${what} within ${bound} ms (option storeTimeoutMs)`);
    this.#passErrors = options.passErrors ?? false;
    this.#tickMs = Math.max(1, Math.min(100, Math.floor(ms / 10)));
  }

  /** Calls awaiting their answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Runs `call` under the deadline. It takes a function, not a promise, so that a store method that
   * throws synchronously or returns a plain value (a buggy third-party store) fails the same clean
   * way as one whose promise rejects. The rejection handler is always attached, so a late failure of
   * a call that already timed out never becomes an unhandled rejection; settling twice is a no-op.
   */
  run<T>(call: () => Promise<T> | T, what: string): Promise<T> {
    let op: Promise<T>;
    try {
      op = Promise.resolve(call());
    } catch (err) {
      op = Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { at: Date.now() + this.#ms, what, reject };
      this.#pending.add(entry);
      this.#ticker ??= setInterval(() => this.#tick(), this.#tickMs);
      op.then(
        (value) => {
          this.#pending.delete(entry);
          resolve(value);
        },
        (err: unknown) => {
          if (!this.#pending.delete(entry)) return; // already failed by its deadline
          this.#onFailure();
          reject(this.#passErrors || isTetherError(err) ? err : new StoreUnavailableError(`the session store failed on ${what}`, { cause: err }));
        },
      );
    });
  }

  #tick(): void {
    const now = Date.now();
    for (const entry of this.#pending) {
      if (entry.at > now) break;
      this.#pending.delete(entry);
      this.#onFailure();
      entry.reject(new StoreUnavailableError(this.#late(entry.what, this.#ms)));
    }
    if (this.#pending.size === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }
}
