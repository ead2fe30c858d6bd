/**
 * The engine's limits on creating sessions (TetherOptions.newSessions, SECURITY.md S47): per client
 * address and in total, counted in the store when it keeps shared counts, else in this process.
 * @module
 */
import { RateLimitedError } from './errors.js';
import { networkOf } from './network.js';
import { SlidingWindowLimiter, fallingBackTo } from './rate-limit.js';
import type { SharedLimiter } from './rate-limit.js';
import type { Clock, SessionStore } from './store.js';
import type { NewSessionLimits } from './options.js';

/** An address's key: itself for IPv4, its /64 for IPv6 (one client holds a whole /64). */
const CLIENT = { ipv4: 32, ipv6: 64 } as const;

export class Admission {
  readonly #perAddress: SharedLimiter | null;
  readonly #total: SharedLimiter | null;
  readonly #retryAfterSec: number;

  constructor(limits: Readonly<Required<Omit<NewSessionLimits, 'limiter'>>> & Pick<NewSessionLimits, 'limiter'>, store: SessionStore, clock: Clock) {
    const now = (): number => clock.now();
    const make = limits.limiter
      ?? ((name: string, limit: number, windowMs: number) => fallingBackTo(store.limiter?.(name, limit, windowMs), new SlidingWindowLimiter(limit, windowMs, 100_000, now)));
    this.#perAddress = limits.perAddress > 0 ? make('tether.new-sessions', limits.perAddress, limits.windowMs) : null;
    this.#total = limits.total > 0 ? make('tether.new-sessions-total', limits.total, limits.windowMs) : null;
    this.#retryAfterSec = Math.ceil(limits.windowMs / 1000);
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
  }
}
