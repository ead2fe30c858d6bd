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
  /** Runs after a tick that failed one or more calls at their deadline (a store may then drop a hung connection). */
  onLate?: () => void;
}

/** A call awaiting its answer: a link in the queue, in deadline order. */
class Pending {
  /** The deadline on the monotonic clock (performance.now): a step of the wall clock neither stretches nor collapses it. */
  readonly at: number;
  readonly what: string;
  /** Fails the call; null once it is settled (nothing is kept of a settled call's promise). */
  reject: ((err: unknown) => void) | null;
  next: Pending | null = null;

  constructor(at: number, what: string, reject: (err: unknown) => void) {
    this.at = at;
    this.what = what;
    this.reject = reject;
  }
}

/**
 * Deadlines for store calls that all share one bound. Every request makes at least one store call,
 * so instead of a timer per call (an insert into and a removal from Node's timer lists each time)
 * pending calls wait in one queue, in deadline order, and one ticker, running only while calls are
 * pending, fails those past their deadline. A call fails at most one tick (a tenth of the bound,
 * at most 100 ms) after its deadline.
 *
 * The queue is a linked list whose settled links are dropped from its head as they reach it: a call
 * costs a link and two pointer writes. A Set of pending calls (an insert and a delete per call) cost
 * several microseconds per write over Redis, where four calls are made (bench/analysis.md item 26).
 */
export class Deadlines {
  readonly #ms: number;
  readonly #tickMs: number;
  #head: Pending | null = null;
  #tail: Pending | null = null;
  #pending = 0;
  readonly #onFailure: () => void;
  readonly #late: (what: string, ms: number) => string;
  readonly #passErrors: boolean;
  readonly #onLate: (() => void) | undefined;
  #ticker: NodeJS.Timeout | undefined;

  constructor(ms: number, options: DeadlineOptions = {}) {
    this.#ms = ms;
    this.#onFailure = options.onFailure ?? (() => {});
    this.#late = options.late ?? ((what, bound) => `the session store did not answer ${what} within ${bound} ms (option storeTimeoutMs)`);
    this.#passErrors = options.passErrors ?? false;
    this.#onLate = options.onLate;
    this.#tickMs = Math.max(1, Math.min(100, Math.floor(ms / 10)));
  }

  /** Calls awaiting their answer. */
  get pending(): number {
    return this.#pending;
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
      const entry = new Pending(performance.now() + this.#ms, what, reject);
      this.#enqueue(entry);
      op.then(
        (value) => {
          if (entry.reject !== null) this.#settle(entry);
          resolve(value);
        },
        (err: unknown) => {
          if (entry.reject === null) return; // already failed by its deadline
          this.#settle(entry);
          this.#onFailure();
          reject(this.#passErrors || isTetherError(err) ? err : new StoreUnavailableError(`the session store failed on ${what}`, { cause: err }));
        },
      );
    });
  }

  #enqueue(entry: Pending): void {
    if (this.#tail === null) this.#head = entry;
    else this.#tail.next = entry;
    this.#tail = entry;
    this.#pending++;
    this.#ticker ??= setInterval(() => this.#tick(), this.#tickMs);
  }

  /**
   * Marks the call answered (or failed) and drops the settled links at the head of the queue. Calls
   * answered behind one still waiting stay linked (a few dozen bytes each, nothing of their result)
   * until that one is answered or fails at its deadline.
   */
  #settle(entry: Pending): void {
    entry.reject = null;
    this.#pending--;
    let head = this.#head;
    while (head !== null && head.reject === null) head = head.next;
    this.#head = head;
    if (head === null) this.#tail = null;
  }

  #tick(): void {
    const now = performance.now();
    let late = false;
    // The head is never a settled call: #settle drops those as they reach it.
    for (let entry = this.#head; entry !== null && entry.at <= now; entry = this.#head) {
      const reject = entry.reject!;
      this.#settle(entry);
      this.#onFailure();
      reject(new StoreUnavailableError(this.#late(entry.what, this.#ms)));
      late = true;
    }
    if (late) this.#onLate?.();
    if (this.#pending === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }
}
