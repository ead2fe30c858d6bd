/**
 * The engine's limits on creating sessions (TetherOptions.newSessions, SECURITY.md S47): rates per
 * client address and in total, counted in the store when it keeps shared counts, else in this process;
 * and a cap on the sessions the store holds.
 * @module
 */
import { OptionsInvalidError, RateLimitedError, TooManySessionsError } from './errors.js';
import { clientNetwork } from './network.js';
import { SlidingWindowLimiter, fallingBackTo } from './rate-limit.js';
import type { SharedLimiter } from './rate-limit.js';
import type { Clock, SessionStore } from './store.js';
import type { NewSessionLimits } from './options.js';

type Limits = Readonly<Required<Omit<NewSessionLimits, 'limiter'>> & Pick<NewSessionLimits, 'limiter'>>;

export class Admission {
  readonly #perAddress: SharedLimiter | null;
  readonly #total: SharedLimiter | null;
  readonly #active: ActiveCap | null;
  readonly #retryAfterSec: number;

  /**
   * `expiryGraceMs`: how long the store keeps a session past the engine's timeout. The cap counts with
   * that margin (`count({ marginMs })`), so a session that timed out is not counted for that long.
   */
  constructor(limits: Limits, store: SessionStore, clock: Clock, expiryGraceMs: number) {
    const now = (): number => clock.now();
    const make = limits.limiter
      ?? ((name: string, limit: number, windowMs: number) => fallingBackTo(store.limiter?.(name, limit, windowMs), new SlidingWindowLimiter(limit, windowMs, 100_000, now)));
    this.#perAddress = limits.perAddress > 0 ? make('tether.new-sessions', limits.perAddress, limits.windowMs) : null;
    this.#total = limits.total > 0 ? make('tether.new-sessions-total', limits.total, limits.windowMs) : null;
    this.#retryAfterSec = Math.ceil(limits.windowMs / 1000);
    if (limits.maxActive > 0 && typeof store.count !== 'function') {
      throw new OptionsInvalidError('Tether: options.newSessions.maxActive needs a store that counts its sessions (count()); this one does not');
    }
    this.#active = limits.maxActive > 0 ? new ActiveCap(limits.maxActive, limits.recountMs, clock, () => store.count!({ marginMs: expiryGraceMs })) : null;
  }

  /**
   * Counts one new session from `address` (undefined: counted in the total only), or throws RATE_LIMITED.
   * Resolves to a function the caller must call once the session's write settled: true when it was
   * stored, false when it failed (a store outage), which gives the place under `maxActive` back.
   */
  async admit(address: string | undefined): Promise<(stored: boolean) => void> {
    const client = this.#perAddress === null ? undefined : clientNetwork(address);
    if (client !== undefined && !(await this.#perAddress!.take(client))) {
      throw new RateLimitedError('too many new sessions from this address; slow down', this.#retryAfterSec);
    }
    if (this.#total !== null && !(await this.#total.take('*'))) {
      throw new RateLimitedError('too many new sessions from all clients right now; try again later', this.#retryAfterSec);
    }
    return this.#active === null ? ignore : this.#active.admit();
  }

  /** The live sessions as last counted plus those stored since; null without the cap or before a count. */
  get activeSessions(): number | null {
    return this.#active?.reckoned ?? null;
  }

  /** Many sessions ended at once (`destroyAllSessions`): the next new session counts the store again. */
  recountSoon(): void {
    this.#active?.recountSoon();
  }
}

const ignore = (): void => {};

/** A count that has not settled by then is given up (the last count holds); a store call's own deadline would cut off a long SCAN. */
const COUNT_GIVE_UP_MS = 60_000;
/** Counting may take at most this share of the time: a count that took 300 ms is not repeated for 30 s. */
const COUNT_DUTY = 0.01;

/**
 * The cap on live sessions: the store's count plus the sessions stored since that count began, and
 * those admitted whose write has not settled yet (a write that fails gives its place back). The
 * first count starts with the engine; until one has succeeded nothing is refused. A count is asked
 * again at most every `recountMs`, and never so often that counting takes more than 1 % of the time
 * (RedisStore counts by SCAN, ≈ 3 ms per 1,000 keys). A due count runs behind the request, unless the
 * last count would refuse it: then it waits for the new one. Sessions admitted while a count runs are
 * added on top of it whether or not it saw them, and sessions that end are only seen by the next
 * count: both err towards refusing.
 */
class ActiveCap {
  readonly #max: number;
  readonly #recountMs: number;
  readonly #clock: Clock;
  readonly #count: () => Promise<number>;
  /** The last count, or null before one succeeded. */
  #counted: number | null = null;
  /** Sessions stored since the last count began. */
  #since = 0;
  /** Sessions admitted whose write has not settled: counted against the cap, not as stored. */
  #inFlight = 0;
  /** When the next count is due, by the clock. */
  #next = -Infinity;
  #running: Promise<void> | null = null;

  constructor(max: number, recountMs: number, clock: Clock, count: () => Promise<number>) {
    this.#max = max;
    this.#recountMs = recountMs;
    this.#clock = clock;
    this.#count = count;
    void this.#recount();
  }

  async admit(): Promise<(stored: boolean) => void> {
    if (this.#clock.now() >= this.#next) {
      const counting = this.#recount();
      if (this.#full()) await counting;
    }
    if (this.#full()) {
      const retryAfterSec = Math.max(1, Math.ceil((this.#next - this.#clock.now()) / 1000));
      throw new TooManySessionsError('the server holds as many sessions as it may right now; try again in a few seconds', retryAfterSec);
    }
    this.#inFlight++;
    let settled = false;
    return (stored) => {
      if (settled) return;
      settled = true;
      this.#inFlight--;
      if (stored) this.#since++;
    };
  }

  recountSoon(): void {
    this.#next = -Infinity;
  }

  get reckoned(): number | null {
    return this.#counted === null ? null : this.#counted + this.#since;
  }

  #full(): boolean {
    return this.#counted !== null && this.#counted + this.#since + this.#inFlight >= this.#max;
  }

  #recount(): Promise<void> {
    if (this.#running !== null) return this.#running;
    const admittedBefore = this.#since;
    const began = this.#clock.now();
    let giveUp: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      giveUp = setTimeout(() => reject(new Error('the count took too long')), COUNT_GIVE_UP_MS);
      giveUp.unref();
    });
    // A store that throws instead of rejecting fails this count, not the engine's construction.
    this.#running = Promise.race([new Promise<number>((resolve) => resolve(this.#count())), late]).then((n) => {
      this.#counted = n;
      this.#since -= admittedBefore;
      this.#next = began + Math.max(this.#recountMs, (this.#clock.now() - began) / COUNT_DUTY);
    }, () => {
      // The store could not be counted: the last count holds, and the next is tried `recountMs` from now.
      this.#next = this.#clock.now() + this.#recountMs;
    }).finally(() => {
      clearTimeout(giveUp);
      this.#running = null;
    });
    return this.#running;
  }
}
