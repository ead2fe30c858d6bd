/**
 * The engine's limits on creating sessions (TetherOptions.newSessions, SECURITY.md S47): rates per
 * client address and in total, counted in the store when it keeps shared counts, else in this process;
 * and a cap on the sessions the store holds.
 * @module
 */
import { OptionsInvalidError, RateLimitedError, TooManySessionsError } from './errors.js';
import { networkOf } from './network.js';
import { SlidingWindowLimiter, fallingBackTo } from './rate-limit.js';
import type { SharedLimiter } from './rate-limit.js';
import type { Clock, SessionStore } from './store.js';
import type { NewSessionLimits } from './options.js';

/** An address's key: itself for IPv4, its /64 for IPv6 (one client holds a whole /64). */
const CLIENT = { ipv4: 32, ipv6: 64 } as const;

type Limits = Readonly<Required<Omit<NewSessionLimits, 'limiter'>> & Pick<NewSessionLimits, 'limiter'>>;

export class Admission {
  readonly #perAddress: SharedLimiter | null;
  readonly #total: SharedLimiter | null;
  readonly #active: ActiveCap | null;
  readonly #retryAfterSec: number;

  /** `count`: the store's `count()` under the engine's deadline. */
  constructor(limits: Limits, store: SessionStore, clock: Clock, count: () => Promise<number>) {
    const now = (): number => clock.now();
    const make = limits.limiter
      ?? ((name: string, limit: number, windowMs: number) => fallingBackTo(store.limiter?.(name, limit, windowMs), new SlidingWindowLimiter(limit, windowMs, 100_000, now)));
    this.#perAddress = limits.perAddress > 0 ? make('tether.new-sessions', limits.perAddress, limits.windowMs) : null;
    this.#total = limits.total > 0 ? make('tether.new-sessions-total', limits.total, limits.windowMs) : null;
    this.#retryAfterSec = Math.ceil(limits.windowMs / 1000);
    if (limits.maxActive > 0 && typeof store.count !== 'function') {
      throw new OptionsInvalidError('Tether: options.newSessions.maxActive needs a store that counts its sessions (count()); this one does not');
    }
    this.#active = limits.maxActive > 0 ? new ActiveCap(limits.maxActive, limits.recountMs, clock, count) : null;
  }

  /** Counts one new session from `address` (undefined: counted in the total only), or throws RATE_LIMITED. */
  async admit(address: string | undefined): Promise<void> {
    const client = this.#perAddress === null ? undefined : networkOf(address, CLIENT);
    if (client !== undefined && !(await this.#perAddress!.take(client))) {
      throw new RateLimitedError('too many new sessions from this address; slow down', this.#retryAfterSec);
    }
    if (this.#total !== null && !(await this.#total.take('*'))) {
      throw new RateLimitedError('too many new sessions from all clients right now; try again later', this.#retryAfterSec);
    }
    if (this.#active !== null) await this.#active.admit();
  }
}

/**
 * The cap on live sessions: the store's count, asked again every `recountMs`, plus the sessions
 * admitted since that count began. A due count runs in the background, unless the request has no count
 * to go by or the last one would refuse it: then it waits for the new one. Sessions admitted while a count runs are added on top of it whether or not
 * it saw them, and sessions that end are only seen by the next count: both err towards refusing.
 */
class ActiveCap {
  readonly #max: number;
  readonly #recountMs: number;
  readonly #clock: Clock;
  readonly #count: () => Promise<number>;
  readonly #retryAfterSec: number;
  /** The last count, or null before one succeeded. */
  #counted: number | null = null;
  /** Sessions admitted since the last count began. */
  #since = 0;
  /** When the last count began (or failed), by the clock. */
  #at = -Infinity;
  #running: Promise<void> | null = null;

  constructor(max: number, recountMs: number, clock: Clock, count: () => Promise<number>) {
    this.#max = max;
    this.#recountMs = recountMs;
    this.#clock = clock;
    this.#count = count;
    this.#retryAfterSec = Math.ceil(recountMs / 1000);
  }

  async admit(): Promise<void> {
    if (this.#clock.now() - this.#at >= this.#recountMs) {
      const counting = this.#recount();
      // Only a request that has no count yet, or that the last count would refuse, waits for the new one.
      if (this.#full(true)) await counting;
    }
    if (this.#full(false)) {
      throw new TooManySessionsError('the server holds as many sessions as it may right now; try again in a few seconds', this.#retryAfterSec);
    }
    this.#since++;
  }

  /** Whether the cap is reached; without a count, `unknown`. */
  #full(unknown: boolean): boolean {
    return this.#counted === null ? unknown : this.#counted + this.#since >= this.#max;
  }

  #recount(): Promise<void> {
    if (this.#running !== null) return this.#running;
    const admittedBefore = this.#since;
    this.#at = this.#clock.now();
    this.#running = this.#count().then((n) => {
      this.#counted = n;
      this.#since -= admittedBefore;
    }, () => {
      // The store could not be counted: the last count holds, and the next is tried `recountMs` from now.
      this.#at = this.#clock.now();
    }).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }
}
