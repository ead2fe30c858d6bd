/** The admin API (the `admin` account only): live sessions per node, store figures, ending a user's sessions. @module */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden, userNotFound } from '../lib/errors.js';
import { requireUser } from '../context.js';
import type { ShopContext } from '../context.js';

async function requireAdmin(ctx: ShopContext, req: FastifyRequest): Promise<void> {
  const user = await ctx.db.findUserById(requireUser(req));
  if (!user?.isAdmin) throw forbidden();
}

/** This process's figures; with several nodes the admin page lists one entry per node. */
export function nodeFigures(ctx: ShopContext): Record<string, unknown> {
  return {
    node: ctx.config.nodeName,
    pid: process.pid,
    activeSessions: ctx.active.count(),
    uptimeSeconds: Math.round(process.uptime()),
    engine: ctx.tether.stats(),
  };
}

export function adminRoutes(app: FastifyInstance, ctx: ShopContext): void {
  app.get('/api/admin/overview', async (req) => {
    await requireAdmin(ctx, req);
    const store = ctx.tether.store as typeof ctx.tether.store & { stats?: () => unknown };
    return {
      nodes: [nodeFigures(ctx)],
      store: {
        name: store.name,
        records: typeof store.count === 'function' ? await store.count() : null,
        stats: typeof store.stats === 'function' ? store.stats() : null,
      },
      orders: { placedByThisNode: ctx.counters.ordersPlaced },
    };
  });

  app.post<{ Params: { username: string } }>('/api/admin/users/:username/sessions/end', async (req) => {
    await requireAdmin(ctx, req);
    const user = await ctx.db.findUserByName(req.params.username);
    if (!user) throw userNotFound();
    const ended = await ctx.tether.destroyUserSessions(user.id);
    return { username: user.username, ended };
  });
}
