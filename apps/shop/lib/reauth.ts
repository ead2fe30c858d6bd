/**
 * The password typed again: for a password change or an account's deletion (every time), and as the
 * step-up of ending sessions and placing an order (ASVS 7.5.1, 7.5.3), asked only when the last sign-in
 * or confirmation is older than SHOP_REAUTH_WINDOW.
 * @module
 */
import type { FastifyRequest } from 'fastify';
import type { User } from '../db/index.js';
import { audit, sessionOf } from '../context.js';
import type { ShopContext } from '../context.js';
import { invalidCredentials, validationFailed } from './errors.js';
import { verifyPassword } from './passwords.js';
import { objectBody, onlyKeys } from './validate.js';

/**
 * The user, once their own password is given again; 401 INVALID_CREDENTIALS with `message` when it is
 * not. Wrong answers count against the account and the address like failed logins, so a session alone
 * is no way around their limit.
 */
export async function checkPassword(ctx: ShopContext, req: FastifyRequest, userId: string, password: string, message: string): Promise<User> {
  const user = await ctx.db.findUserById(userId);
  if (!user) throw invalidCredentials(message);
  const attempt = await ctx.loginFailures.begin(ctx, req, user.username);
  if (await verifyPassword(password, user.passwordHash)) {
    await attempt.succeeded();
    return user;
  }
  audit(ctx, req, 'auth.password_check_failed', { user: userId });
  throw invalidCredentials(message);
}

/**
 * Step-up: without `password`, the signed-in user must have signed in or confirmed it within
 * SHOP_REAUTH_WINDOW, else 401 REAUTH_REQUIRED (the page then asks for it); with it, the password is
 * checked (401 INVALID_CREDENTIALS) and the window starts again (`session.reauthenticated()`, which
 * also gives the session a new ID: the answer carries the new cookie, the CSRF token stays).
 * Whoever holds only a stolen session cookie of a session signed in long ago cannot go on, nor can a
 * copy of the cookie taken before the step-up.
 */
export async function stepUp(ctx: ShopContext, req: FastifyRequest, userId: string, password: unknown): Promise<void> {
  const session = sessionOf(req);
  if (password === undefined) return session.requireRecentAuth(ctx.config.reauthWindowSec * 1000);
  if (typeof password !== 'string' || password.length > 1024) throw validationFailed('password must be the account\'s password');
  await checkPassword(ctx, req, userId, password, 'the password is wrong');
  session.reauthenticated();
  audit(ctx, req, 'auth.reauthenticated', { user: userId });
}

/** Ending sessions: `{"password": …}` or nothing (stepUp), else 400 VALIDATION_FAILED. */
export async function requireRecentAuth(ctx: ShopContext, req: FastifyRequest, userId: string): Promise<void> {
  const body = req.body === undefined || req.body === null ? {} : objectBody(req.body);
  onlyKeys(body, ['password']);
  await stepUp(ctx, req, userId, body.password);
}
