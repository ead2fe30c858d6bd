/**
 * The admin API (the `admin` account only): live sessions per node (every worker of a cluster), store
 * figures, a user's status, ending a user's sessions or everyone's, disabling and enabling accounts.
 * @module
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EngineStats } from 'tether';
import { clusterMetrics, isClusterWorker } from 'tether/cluster';
import type { User } from '../db/index.js';
import { adminAccount, forbidden, userNotFound, validationFailed } from '../lib/errors.js';
import { audit, requireUser, sessionOf } from '../context.js';
import { requireRecentAuth } from '../lib/reauth.js';
import type { ShopContext } from '../context.js';

async function requireAdmin(ctx: ShopContext, req: FastifyRequest): Promise<void> {
  const user = await ctx.db.findUserById(requireUser(req));
  if (!user?.isAdmin) throw forbidden();
}

/** A node's figures on the admin page; `pid` is known for the process that answers only. */
export interface NodeFigures {
  node: string;
  pid: number | null;
  activeSessions: number;
  uptimeSeconds: number | null;
  engine: Partial<EngineStats>;
}

/** This process's figures. */
export function nodeFigures(ctx: ShopContext): NodeFigures {
  return {
    node: ctx.config.nodeName,
    pid: process.pid,
    activeSessions: ctx.active.count(),
    uptimeSeconds: Math.round(process.uptime()),
    engine: ctx.tether.stats(),
  };
}

/** The series the other workers' figures are read from, and where each goes. */
const SERIES: Record<string, (n: NodeFigures, v: number) => void> = {
  shop_active_sessions: (n, v) => void (n.activeSessions = v),
  tether_sessions_created_total: (n, v) => void (n.engine.created = v),
  tether_sessions_regenerated_total: (n, v) => void (n.engine.regenerated = v),
  tether_sessions_destroyed_total: (n, v) => void (n.engine.destroyed = v),
  tether_sessions_expired_total: (n, v) => void (n.engine.expired = v),
  tether_cas_conflicts_total: (n, v) => void (n.engine.conflicts = v),
  tether_sockets: (n, v) => void (n.engine.sockets = v),
  // Whole seconds, as prom-client rounds the start time.
  process_start_time_seconds: (n, v) => void (n.uptimeSeconds = Math.max(0, Math.round(Date.now() / 1000 - v))),
};

/**
 * Every worker's figures under the cluster. A request reaches one worker, so the others' come from the
 * metrics the primary collects from all of them (each series labelled with its `node`); this worker's
 * alone when the primary does not answer, as /metrics does.
 */
async function clusterNodes(ctx: ShopContext): Promise<NodeFigures[]> {
  let text: string;
  try {
    text = await clusterMetrics();
  } catch {
    return [nodeFigures(ctx)];
  }
  const nodes = new Map<string, NodeFigures>([[ctx.config.nodeName, nodeFigures(ctx)]]);
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{(?:.*,)?node="((?:[^"\\]|\\.)*)"(?:,.*)?\} (\S+)$/.exec(line);
    const put = m ? SERIES[m[1]!] : undefined;
    if (!m || !put) continue;
    const name = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (name === ctx.config.nodeName) continue;
    let n = nodes.get(name);
    if (!n) nodes.set(name, (n = { node: name, pid: null, activeSessions: 0, uptimeSeconds: null, engine: { created: 0, regenerated: 0, destroyed: 0, expired: 0, conflicts: 0, sockets: 0 } }));
    put(n, Number(m[3]));
  }
  return [...nodes.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
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
    // The admin page asks for these by itself every few seconds: not the admin's activity, so it moves no
    // deadline, and an admin page left open is signed out at the idle timeout like any other page.
    sessionOf(req).touch(false);
    await requireAdmin(ctx, req);
    const store = ctx.tether.store as typeof ctx.tether.store & { stats?: () => unknown };
    // Bounded and mapped like the engine's own calls: a store that fails or hangs is 503 STORE_UNAVAILABLE
    // within storeTimeoutMs, counted in storeErrors, not a 500 or a request that never ends. Counted as
    // newSessions.maxActive counts: a session past its timeout, which the store keeps for expiryGraceMs,
    // has ended.
    const marginMs = ctx.tether.options.expiryGraceMs;
    const count = store.count ? () => store.count!({ marginMs }) : undefined;
    return {
      nodes: isClusterWorker() ? await clusterNodes(ctx) : [nodeFigures(ctx)],
      store: {
        name: store.name,
        sessions: count ? await ctx.tether.callStore(count, 'count') : null,
        // SHOP_MAX_SESSIONS (null: no cap), compared with the same count.
        cap: ctx.config.maxSessions > 0 ? ctx.config.maxSessions : null,
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
   * Ends every session of every user (ASVS 7.4.5: after a breach), the admin's own with them; carts
   * saved to accounts (user contexts) stay. A step-up like ending one's own sessions: `{"password": …}`,
   * or a sign-in within SHOP_REAUTH_WINDOW, else 401 REAUTH_REQUIRED.
   */
  app.post('/api/admin/sessions/end', async (req) => {
    await requireAdmin(ctx, req);
    const adminId = requireUser(req);
    await requireRecentAuth(ctx, req, adminId);
    const ended = await ctx.tether.destroyAllSessions();
    audit(ctx, req, 'admin.all_sessions_ended', { admin: adminId, ended });
    // Gone from the store already: this expires the admin's cookie in the answer.
    sessionOf(req).destroy();
    return { ended };
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
