/** The account: the user's sessions (devices), password, orders, and deleting it. @module */
import type { FastifyInstance } from 'fastify';
import type { Order } from '../db/index.js';
import { centsToAmount } from '../lib/cart.js';
import { adminAccount, sessionNotFound, validationFailed } from '../lib/errors.js';
import { hashPassword } from '../lib/passwords.js';
import { checkPassword, requireRecentAuth } from '../lib/reauth.js';
import { objectBody, onlyKeys } from '../lib/validate.js';
import { audit, guestOrdersOf, requireUser, sessionOf, sessionView } from '../context.js';
import type { ShopContext } from '../context.js';
import { newPassword } from './auth.js';
import { GUEST_ORDERS_KEPT } from './checkout.js';

export function orderJson(o: Order): Record<string, unknown> {
  return {
    id: o.id,
    createdAt: new Date(o.createdAt).toISOString(),
    items: o.items.map((l) => ({ productId: l.productId, name: l.name, quantity: l.quantity, price: centsToAmount(l.priceCents) })),
    total: centsToAmount(o.totalCents),
    shipping: o.shipping,
    payment: { brand: o.payment.brand, last4: o.payment.last4 },
    // A guest's order: where its receipt went. A user's has none, and its JSON is as before.
    ...(o.email !== null ? { email: o.email } : {}),
  };
}

export function accountRoutes(app: FastifyInstance, ctx: ShopContext): void {
  app.get('/api/me/sessions', async (req) => {
    const userId = requireUser(req);
    const list = await ctx.tether.listUserSessions(userId, sessionOf(req));
    return list.map((s) => ({
      id: s.id,
      createdAt: new Date(s.createdAt).toISOString(),
      lastSeenAt: new Date(s.lastSeenAt).toISOString(),
      expiresAt: new Date(s.expiresAt).toISOString(),
      userAgent: s.userAgent,
      // The network it was last seen from (the address cut to /24 or /48), as the owner would recognise it.
      network: s.network,
      remembered: s.remembered,
      current: s.current,
    }));
  });

  app.delete('/api/me/sessions/others', async (req) => {
    const userId = requireUser(req);
    await requireRecentAuth(ctx, req, userId);
    const ended = await ctx.tether.destroyUserSessions(userId, { except: sessionOf(req) });
    audit(ctx, req, 'account.sessions_ended', { user: userId, ended, which: 'others' });
    return { ended };
  });

  app.delete<{ Params: { id: string } }>('/api/me/sessions/:id', async (req) => {
    const userId = requireUser(req);
    const id = req.params.id;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw sessionNotFound();
    await requireRecentAuth(ctx, req, userId);
    if (!(await ctx.tether.destroyUserSession(userId, id))) throw sessionNotFound();
    audit(ctx, req, 'account.sessions_ended', { user: userId, ended: 1, which: id });
    return { ended: 1 };
  });

  /**
   * A password change: the current password first (whoever holds only the session cannot do it), then
   * a new session ID and CSRF token for this device, and by default every other session of the user
   * ended, so a session an attacker may hold does not outlive the change. The password typed counts as
   * a confirmation (`reauthenticated()`) for the step-ups after it.
   */
  app.post('/api/me/password', async (req) => {
    const userId = requireUser(req);
    const b = objectBody(req.body);
    onlyKeys(b, ['currentPassword', 'newPassword', 'logoutOtherSessions']);
    if (typeof b.currentPassword !== 'string' || b.currentPassword.length > 1024) throw validationFailed('currentPassword is required');
    const password = newPassword(b, 'newPassword');
    if (b.logoutOtherSessions !== undefined && typeof b.logoutOtherSessions !== 'boolean') throw validationFailed('logoutOtherSessions must be true or false');
    await checkPassword(ctx, req, userId, b.currentPassword, 'the current password is wrong');
    await ctx.db.setPasswordHash(userId, await hashPassword(password));
    const session = sessionOf(req);
    session.regenerate();
    // The current password was just typed: a step-up in the next SHOP_REAUTH_WINDOW asks for it no more.
    // The ID is new already (regenerate(), with a new CSRF token too).
    session.reauthenticated({ regenerate: false });
    const endedSessions = b.logoutOtherSessions === false ? 0 : await ctx.tether.destroyUserSessions(userId, { except: session });
    audit(ctx, req, 'account.password_changed', { user: userId, endedSessions });
    return { ...(await sessionView(ctx, session)), endedSessions };
  });

  /**
   * Deletes the account (S28): always asks for the password. The user row and orders go in one
   * transaction first, so no new login can start; then every session, this one with its cookie, and
   * then the user context (saved cart, preferences, unfinished checkout): cleared before the sessions
   * ended, another device's next cart change would write it again, kept for userContextTtlMs. A login
   * in flight clears what it merged once it finds the account gone (auth.ts finishSignIn).
   */
  app.delete('/api/me', async (req) => {
    const userId = requireUser(req);
    const b = objectBody(req.body);
    onlyKeys(b, ['password']);
    if (typeof b.password !== 'string' || b.password.length > 1024) throw validationFailed('password is required');
    if ((await checkPassword(ctx, req, userId, b.password, 'the password is wrong')).isAdmin) throw adminAccount();
    await ctx.db.deleteUser(userId);
    const session = sessionOf(req);
    const endedSessions = await ctx.tether.destroyUserSessions(userId, { except: session });
    await ctx.tether.users.clear(userId);
    audit(ctx, req, 'account.deleted', { user: userId, endedSessions: endedSessions + 1 });
    session.destroy();
    return { deleted: true, endedSessions };
  });

  /**
   * A user's orders; for a visitor, the orders this session placed as a guest (the IDs its data keeps,
   * and of those only orders stored without a user). Only the session's data is read, never written,
   * so a visitor without a session gets [] and no session (the route is not `createsSession`).
   */
  app.get('/api/orders', async (req) => {
    const session = sessionOf(req);
    if (session.userId !== null) return (await ctx.db.listOrders(session.userId)).map(orderJson);
    const ids = guestOrdersOf(session.data.guestOrders).slice(-GUEST_ORDERS_KEPT);
    return (await ctx.db.listGuestOrders(ids)).map(orderJson);
  });
}
