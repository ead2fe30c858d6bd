/**
 * The shop's own error codes, as TetherErrors so every adapter and the shop's error handler answer
 * them with the one `{"error":{"code","message"}}` shape.
 * @module
 */
import { RateLimitedError, TetherError } from 'tether';
import { LOGIN_FAILURE_WINDOW_MS, REGISTRATION_WINDOW_MS } from '../config.js';

export const validationFailed = (message: string): TetherError => new TetherError('VALIDATION_FAILED', message, 400);
export const productNotFound = (): TetherError => new TetherError('PRODUCT_NOT_FOUND', 'no such product', 404);
export const authRequired = (): TetherError => new TetherError('AUTH_REQUIRED', 'log in first', 401);
export const forbidden = (): TetherError => new TetherError('FORBIDDEN', 'this needs the admin account', 403);
export const invalidCredentials = (message = 'wrong username or password'): TetherError => new TetherError('INVALID_CREDENTIALS', message, 401);
export const usernameTaken = (): TetherError => new TetherError('USERNAME_TAKEN', 'that username is taken', 409);
export const sessionNotFound = (): TetherError => new TetherError('SESSION_NOT_FOUND', 'you have no such session', 404);
export const userNotFound = (): TetherError => new TetherError('USER_NOT_FOUND', 'no such user', 404);
export const cartEmpty = (): TetherError => new TetherError('CART_EMPTY', 'the cart is empty', 409);
export const cartChanged = (): TetherError => new TetherError('CART_CHANGED', 'the cart changed since the review; review the order again', 409);
export const orderPlaced = (orderId: string): TetherError => new TetherError('ORDER_PLACED', `that checkout's order was placed already (order ${orderId}); this is a new checkout`, 409);
export const checkoutAccountChanged = (): TetherError => new TetherError('CHECKOUT_ACCOUNT_CHANGED', 'this checkout is no longer the one the request names: the session signed in or out since (in another tab?); load it again', 409);
export const accountDisabled = (): TetherError => new TetherError('ACCOUNT_DISABLED', 'this account is disabled', 403);
export const adminAccount = (): TetherError => new TetherError('ADMIN_ACCOUNT', 'the admin account cannot be disabled or deleted', 409);

/** Which of the shop's limits refused a request: answered as `error.reason` beside the stable code. */
export type ThrottleReason = 'new_sessions' | 'rejected_cookies' | 'registrations' | 'login_failures' | 'password_checks';

/**
 * 429 RATE_LIMITED naming the limit it came from, so a page can say which: the register page's "too
 * many accounts from your network" is wrong for a refused new session, which its form needs too.
 */
export class ShopRateLimitedError extends RateLimitedError {
  readonly reason: ThrottleReason;
  constructor(reason: ThrottleReason, message?: string, retryAfterSec?: number) {
    super(message, retryAfterSec);
    this.reason = reason;
  }
}

export const loginThrottled = (): TetherError => new ShopRateLimitedError('login_failures', 'too many failed password checks for this account or from this address; try again later', LOGIN_FAILURE_WINDOW_MS / 1000);
export const passwordChecksThrottled = (): TetherError => new ShopRateLimitedError('password_checks', 'too many password checks from this address in the last minute; try again shortly', 60);
export const registrationsThrottled = (): TetherError => new ShopRateLimitedError('registrations', 'too many accounts were registered from this address lately; try again later', REGISTRATION_WINDOW_MS / 1000);
