/**
 * Registration, login and logout. Both sign-ins regenerate the session (new ID, new CSRF token: a token
 * from before is then invalid), fold the anonymous cart and preferences into the user context, and
 * drop a guest checkout in progress.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Session } from 'tether';
import { sharedLimiter } from 'tether/cluster';
import type { User } from '../db/index.js';
import { linesOf, mergeLines, isPreferences, preferencesOf, subtractLines } from '../lib/cart.js';
import { accountDisabled, invalidCredentials, registrationsThrottled, usernameTaken, validationFailed } from '../lib/errors.js';
import { dummyHash, hashPassword, verifyPassword } from '../lib/passwords.js';
import { objectBody, onlyKeys } from '../lib/validate.js';
import { audit, clientOf, sessionOf, sessionView } from '../context.js';
import type { SessionView, ShopContext, ShopSession, ShopUserContext } from '../context.js';
import { REGISTRATION_WINDOW_MS } from '../config.js';

const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;
/** How many merged anonymous carts a user context remembers (see ShopUserContext.mergedCarts). */
const MERGED_CARTS_KEPT = 3;

function credentials(body: unknown): { username: string; password: string; remember: boolean } {
  const b = objectBody(body);
  onlyKeys(b, ['username', 'password', 'remember']);
  if (typeof b.username !== 'string' || !USERNAME.test(b.username)) {
    throw validationFailed('username must be 3 to 32 letters, digits, _ . or -');
  }
  return { username: b.username, password: newPassword(b, 'password'), remember: rememberField(b) };
}

/** "Keep me signed in": optional, a boolean. */
function rememberField(b: Record<string, unknown>): boolean {
  if (b.remember !== undefined && typeof b.remember !== 'boolean') throw validationFailed('remember must be true or false');
  return b.remember === true;
}

/** A password being chosen: 8 to 128 characters, not trimmed (spaces are part of a password). */
export function newPassword(b: Record<string, unknown>, name: string): string {
  const v = b[name];
  if (typeof v !== 'string') throw validationFailed(`${name} is required`);
  const length = [...v].length;
  if (length < 8 || length > 128) throw validationFailed(`${name} must be 8 to 128 characters`);
  return v;
}

/**
 * Binds the session to the user: cart merged (sum, capped), preferences applied or saved, a guest
 * checkout dropped, ID regenerated;
 * with `remember`, kept for the engine's remembered timeouts under a persistent cookie.
 */
async function signIn(ctx: ShopContext, session: Session<ShopSession>, user: User, remember: boolean): Promise<void> {
  const anonymousCart = session.userId === null ? linesOf(session.data.cart) : [];
  const anonymousPrefs = session.userId === null && isPreferences(session.data.preferences) ? session.data.preferences : undefined;
  const from = anonymousCart.length > 0 ? session.handle : null;
  await ctx.tether.users.update<ShopUserContext>(user.id, (c) => {
    const merged = Array.isArray(c.mergedCarts) ? c.mergedCarts.filter((m) => typeof m?.from === 'string') : [];
    const before = merged.find((m) => m.from === from)?.lines ?? [];
    c.cart = mergeLines(linesOf(c.cart), subtractLines(anonymousCart, linesOf(before)));
    if (from !== null) c.mergedCarts = [{ from, lines: anonymousCart }, ...merged.filter((m) => m.from !== from)].slice(0, MERGED_CARTS_KEPT);
    if (!isPreferences(c.preferences)) c.preferences = preferencesOf(anonymousPrefs);
  });
  await session.update((d) => {
    delete d.cart;
    delete d.preferences;
    d.username = user.username;
  });
  // A guest checkout in progress is dropped, not carried over: the user goes on with the account's own
  // checkout, which may hold a run from another device that a guest's steps must not overwrite. The
  // cart it was for is merged above, so nothing but the typed-in steps is lost.
  await ctx.guestCheckout.reset(session);
  session.login(user.id);
  session.remember(remember);
}

/**
 * Signs in, answers with the session's view, and makes the login stand only if the account may still
 * log in once the session is stored. Disabling or deleting the account, or changing its password,
 * ends the sessions that exist at that moment; a login whose password was checked just before could
 * store its session just after. So the session is stored here, before the answer, and the account read
 * again: if it changed since the password was checked, this session is ended too (S28).
 */
async function finishSignIn(ctx: ShopContext, req: FastifyRequest, user: User, remember: boolean): Promise<SessionView> {
  const session = sessionOf(req);
  await signIn(ctx, session, user, remember);
  const view = await sessionView(ctx, session);
  await ctx.tether.commit(session);
  const now = await ctx.db.findUserById(user.id);
  if (now !== null && now.disabledAt === null && now.passwordHash === user.passwordHash) return view;
  // Ends it now, and the answer expires the cookie it would otherwise have carried.
  await ctx.tether.endNow(session);
  // The deletion may have cleared the user context before signIn merged this visitor's cart into it:
  // that merge would otherwise keep a deleted account's context for userContextTtlMs.
  if (now === null) await ctx.tether.users.clear(user.id);
  audit(ctx, req, 'auth.login_revoked', { user: user.id, reason: now === null ? 'deleted' : now.disabledAt !== null ? 'disabled' : 'password' });
  throw now?.disabledAt != null ? accountDisabled() : invalidCredentials();
}

export function authRoutes(app: FastifyInstance, ctx: ShopContext): void {
  // Each registration costs a password hash (scrypt: 32 MiB and tens of ms) and stores an account, so one
  // client may make only so many: counted per client (an IPv6 one by its /64), as it starts, so that
  // registrations sent at once cannot pass the limit together; once for the tier on a shared store.
  const registrations = sharedLimiter('shop:registrations', ctx.config.registrationsPerHour, REGISTRATION_WINDOW_MS, { store: ctx.tether.store });

  app.post('/api/auth/register', async (req, reply) => {
    const { username, password, remember } = credentials(req.body);
    if (await ctx.db.findUserByName(username)) throw usernameTaken();
    if (!(await registrations.take(clientOf(req.ip)))) {
      audit(ctx, req, 'auth.throttled', { reason: 'registrations' });
      throw registrationsThrottled();
    }
    const user = await ctx.db.createUser({
      id: randomUUID(), username, passwordHash: await hashPassword(password), isAdmin: false, createdAt: Date.now(), disabledAt: null,
    });
    if (!user) throw usernameTaken(); // lost a race with another registration of the same name
    const view = await finishSignIn(ctx, req, user, remember);
    audit(ctx, req, 'auth.register', { user: user.id });
    return reply.code(201).send(view);
  });

  app.post('/api/auth/login', async (req) => {
    const b = objectBody(req.body);
    // As at register: a misspelt field ("rememberMe") is an error, not a silent session of another kind.
    onlyKeys(b, ['username', 'password', 'remember']);
    if (typeof b.username !== 'string' || typeof b.password !== 'string' || b.username.length > 64 || b.password.length > 1024) {
      throw validationFailed('username and password are required');
    }
    const remember = rememberField(b);
    const attempt = await ctx.loginFailures.begin(ctx, req, b.username);
    const user = await ctx.db.findUserByName(b.username);
    // An unknown name costs one hash too, so timing does not tell which usernames exist.
    const ok = await verifyPassword(b.password, user?.passwordHash ?? (await dummyHash()));
    if (!user || !ok) {
      // The account's ID when the name matched one; never the name as typed (it may be a password).
      audit(ctx, req, 'auth.login_failed', { user: user?.id ?? null, reason: 'credentials' });
      throw invalidCredentials();
    }
    await attempt.succeeded();
    // Said only to whoever knows the password, so it does not tell others which accounts exist.
    if (user.disabledAt !== null) {
      audit(ctx, req, 'auth.login_failed', { user: user.id, reason: 'disabled' });
      throw accountDisabled();
    }
    const view = await finishSignIn(ctx, req, user, remember);
    audit(ctx, req, 'auth.login', { user: user.id, remember });
    return view;
  });

  app.post('/api/auth/logout', async (req) => {
    const session = sessionOf(req);
    const userId = session.userId;
    // Once the session's end is stored: a logout whose commit failed (503) logged nobody out.
    if (userId !== null) session.afterCommit(() => audit(ctx, req, 'auth.logout', { user: userId }));
    session.destroy();
    return { authenticated: false };
  });
}
