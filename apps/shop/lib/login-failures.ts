/**
 * Failed password checks, counted in the shop's database, so every worker and every node that shares
 * it counts together: per account, against password guessing, and per client address, against
 * credential stuffing across accounts. A check counts from the moment it starts (so checks sent in
 * parallel cannot pass the limit together) and is forgotten when the password was right. Past either
 * limit a check is refused before the password is looked at, so while it lasts the right password does
 * not tell itself apart from a wrong one; refused checks are not counted.
 *
 * The database holds only hashes of the keys: a name typed into the login form may be a password.
 * @module
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { LOGIN_FAILURE_WINDOW_MS } from '../config.js';
import type { ShopConfig } from '../config.js';
import { audit, clientOf } from '../context.js';
import type { ShopContext } from '../context.js';
import type { SharedLimiter } from 'tether/cluster';
import { loginThrottled, passwordChecksThrottled } from './errors.js';

/** A password check in progress: it counts as a failure unless `succeeded()` is called. */
export interface LoginAttempt {
  succeeded(): Promise<void>;
}

const key = (kind: string, value: string): string => createHash('sha256').update(`${kind}\0${value}`).digest('base64url');

export class LoginFailures {
  readonly #perAccount: number;
  readonly #perAddress: number;
  /**
   * Every password check, right or wrong, per client: each costs a scrypt hash (32 MiB, tens of ms), and
   * the failures alone do not bound them, since whoever has an account can log in correctly in a loop.
   */
  readonly #checks: SharedLimiter;

  constructor(config: Pick<ShopConfig, 'loginFailuresPerAccount' | 'loginFailuresPerAddress'>, checks: SharedLimiter) {
    this.#perAccount = config.loginFailuresPerAccount;
    this.#perAddress = config.loginFailuresPerAddress;
    this.#checks = checks;
  }

  /**
   * Starts a password check for the account named `username` (any case) from the request's address;
   * 429 RATE_LIMITED (and an `auth.throttled` audit record) when either is past its limit, or when the
   * request's client is past its password checks per minute (`reason: 'password_checks'`).
   */
  async begin(ctx: ShopContext, req: FastifyRequest, username: string): Promise<LoginAttempt> {
    if (!(await this.#checks.take(clientOf(req.ip)))) {
      audit(ctx, req, 'auth.throttled', { reason: 'password_checks' });
      throw passwordChecksThrottled();
    }
    const now = Date.now();
    const { ids, counts } = await ctx.db.addLoginAttempt([key('account', username.toLowerCase()), key('address', clientOf(req.ip))], now, now - LOGIN_FAILURE_WINDOW_MS);
    const forget = (): Promise<void> => ctx.db.removeLoginAttempts(ids);
    if (counts[0]! > this.#perAccount || counts[1]! > this.#perAddress) {
      await forget();
      audit(ctx, req, 'auth.throttled');
      throw loginThrottled();
    }
    return { succeeded: forget };
  }
}
