/** The account: the user's sessions (devices) and orders. @module */
import type { FastifyInstance } from 'fastify';
import type { Order } from '../db/index.js';
import { centsToAmount } from '../lib/cart.js';
import { sessionNotFound } from '../lib/errors.js';
import { requireUser, sessionOf } from '../context.js';
import type { ShopContext } from '../context.js';

export function orderJson(o: Order): Record<string, unknown> {
  return {
    id: o.id,
    createdAt: new Date(o.createdAt).toISOString(),
    items: o.items.map((l) => ({ productId: l.productId, name: l.name, quantity: l.quantity, price: centsToAmount(l.priceCents) })),
    total: centsToAmount(o.totalCents),
    shipping: o.shipping,
    payment: { brand: o.payment.brand, last4: o.payment.last4 },
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
      userAgent: s.userAgent,
      current: s.current,
    }));
  });

  app.delete('/api/me/sessions/others', async (req) => {
    const userId = requireUser(req);
    const ended = await ctx.tether.destroyUserSessions(userId, { except: sessionOf(req) });
    return { ended };
  });

  app.delete<{ Params: { id: string } }>('/api/me/sessions/:id', async (req) => {
    const userId = requireUser(req);
    const id = req.params.id;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id) || !(await ctx.tether.destroyUserSession(userId, id))) throw sessionNotFound();
    return { ended: 1 };
  });

  app.get('/api/orders', async (req) => {
    const userId = requireUser(req);
    return (await ctx.db.listOrders(userId)).map(orderJson);
  });
}
