/**
 * Failed password checks, counted once for the whole cluster (tether/cluster's sharedLimiter): per
 * account, against password guessing, and per client address, against credential stuffing across
 * accounts. Past either limit a check is refused before the password is looked at, so while it lasts
 * the right password does not tell itself apart from a wrong one.
 * @module
 */
import type { FastifyRequest } from 'fastify';
import { sharedLimiter } from 'tether/cluster';
import type { SharedLimiter } from 'tether/cluster';
import { LOGIN_FAILURE_WINDOW_MS } from '../config.js';
import type { ShopConfig } from '../config.js';
import { audit } from '../context.js';
import type { ShopContext } from '../context.js';
import { loginThrottled } from './errors.js';

export class LoginFailures {
  readonly #account: SharedLimiter;
  readonly #address: SharedLimiter;

  constructor(config: Pick<ShopConfig, 'loginFailuresPerAccount' | 'loginFailuresPerAddress'>) {
    this.#account = sharedLimiter('shop:login-failures-account', config.loginFailuresPerAccount, LOGIN_FAILURE_WINDOW_MS);
    this.#address = sharedLimiter('shop:login-failures-address', config.loginFailuresPerAddress, LOGIN_FAILURE_WINDOW_MS);
  }

  /** 429 RATE_LIMITED (and an `auth.throttled` audit record) when the account (its name, any case) or the request's address is past its limit. */
  async check(ctx: ShopContext, req: FastifyRequest, username: string): Promise<void> {
    if ((await this.#account.peek(username.toLowerCase())) && (await this.#address.peek(req.ip))) return;
    audit(ctx, req, 'auth.throttled');
    throw loginThrottled();
  }

  /** Counts one failed check against the account and the address. */
  async failed(req: FastifyRequest, username: string): Promise<void> {
    await Promise.all([this.#account.take(username.toLowerCase()), this.#address.take(req.ip)]);
  }
}
