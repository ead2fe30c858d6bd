/**
 * The admin API (the `admin` account only): live sessions per node, store figures, a user's status,
 * ending a user's sessions, disabling and enabling accounts.
 * @module
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { User } from '../db/index.js';
import { adminAccount, forbidden, userNotFound, validationFailed } from '../lib/errors.js';
import { audit, requireUser } from '../context.js';
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

type UserParams = { Params: { username: string } };

/** Users listed at once, at most. */
export const USER_LIST_MAX = 100;

function userJson(user: User): { username: string; admin: boolean; createdAt: string; disabledAt: string | null } {
  return {
    username: user.username,
    admin: user.isAdmin,
    createdAt: new Date(user.createdAt).toISOString(),
    disabledAt: user.disabledAt === null ? null : new Date(user.disabledAt).toISOString(),
  };
}

async function namedUser(ctx: ShopContext, req: FastifyRequest<UserParams>): Promise<User> {
  await requireAdmin(ctx, req);
  const user = await ctx.db.findUserByName(req.params.username);
  if (!user) throw userNotFound();
  return user;
}

export function adminRoutes(app: FastifyInstance, ctx: ShopContext): void {
  app.get('/api/admin/overview', async (req) => {
    await requireAdmin(ctx, req);
    const store = ctx.tether.store as typeof ctx.tether.store & { stats?: () => unknown };
    // Bounded and mapped like the engine's own calls: a store that fails or hangs is 503 STORE_UNAVAILABLE
    // within storeTimeoutMs, counted in storeErrors, not a 500 or a request that never ends.
    const count = store.count?.bind(store);
    return {
      nodes: [nodeFigures(ctx)],
      store: {
        name: store.name,
        records: count ? await ctx.tether.callStore(count, 'count') : null,
        stats: typeof store.stats === 'function' ? store.stats() : null,
      },
      orders: { placedByThisNode: ctx.counters.ordersPlaced },
    };
  });

  /** Users by name, those starting with `?prefix=` (any case), at most `?limit=` (1–100, default 50). */
  app.get<{ Querystring: { prefix?: string; limit?: string } }>('/api/admin/users', async (req) => {
    await requireAdmin(ctx, req);
    const prefix = req.query.prefix ?? '';
    if (typeof prefix !== 'string' || prefix.length > 64) throw validationFailed('prefix must be at most 64 characters');
    const raw = req.query.limit ?? '50';
    const limit = Number(raw);
    if (typeof raw !== 'string' || !/^\d+$/.test(raw) || limit < 1 || limit > USER_LIST_MAX) throw validationFailed(`limit must be a whole number from 1 to ${USER_LIST_MAX}`);
    return (await ctx.db.listUsers(prefix, limit)).map(userJson);
  });

  app.get<UserParams>('/api/admin/users/:username', async (req) => {
    const user = await namedUser(ctx, req);
    return { ...userJson(user), sessions: (await ctx.tether.listUserSessions(user.id)).length };
  });

  app.post<UserParams>('/api/admin/users/:username/sessions/end', async (req) => {
    const user = await namedUser(ctx, req);
    const ended = await ctx.tether.destroyUserSessions(user.id);
    audit(ctx, req, 'admin.sessions_ended', { admin: requireUser(req), user: user.id, ended });
    return { username: user.username, ended };
  });

  /**
   * Disables an account (S28): marked first, so no new login succeeds, then every session ended. A
   * login whose password was checked just before reads the mark once its session is stored and ends
   * that session itself (routes/auth.ts). The user context stays, for when the account is enabled again.
   */
  app.post<UserParams>('/api/admin/users/:username/disable', async (req) => {
    const user = await namedUser(ctx, req);
    if (user.isAdmin) throw adminAccount();
    await ctx.db.setDisabled(user.id, user.disabledAt ?? ctx.tether.options.clock.now());
    const ended = await ctx.tether.destroyUserSessions(user.id);
    audit(ctx, req, 'admin.user_disabled', { admin: requireUser(req), user: user.id, ended });
    return { username: user.username, disabled: true, ended };
  });

  app.post<UserParams>('/api/admin/users/:username/enable', async (req) => {
    const user = await namedUser(ctx, req);
    await ctx.db.setDisabled(user.id, null);
    audit(ctx, req, 'admin.user_enabled', { admin: requireUser(req), user: user.id });
    return { username: user.username, disabled: false };
  });
}
