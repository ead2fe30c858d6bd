/**
 * What every route of the shop shares: the engine, the database, the catalog, the checkout flows, and
 * the helpers that read a request's session, user and cart.
 * @module
 */
import type { FastifyRequest } from 'fastify';
import { clientNetwork } from 'tether';
import type { Session, Tether } from 'tether';
import type { FlowRunner } from 'tether/flow';
import { optionalSession } from 'tether/fastify';
import type { ShopConfig } from './config.js';
import type { Product, ShopDb } from './db/index.js';
import { authRequired } from './lib/errors.js';
import { cartView, linesOf, preferencesOf } from './lib/cart.js';
import type { CartLine, CartView, Preferences } from './lib/cart.js';
import type { ActiveSessions } from './lib/active-sessions.js';
import type { LoginFailures } from './lib/login-failures.js';

/** What an anonymous session holds; a logged-in one keeps cart and preferences in the user context. */
export interface ShopSession {
  cart: CartLine[];
  preferences: Preferences;
  recentlyViewed: string[];
  username: string;
  /** IDs of the orders placed in this session as a guest, the latest last (a few). */
  guestOrders: string[];
  /** The order the guest's last checkout placed (see LastOrder). */
  lastOrder: LastOrder;
}

/**
 * The order a checkout run placed, kept with the checkout (in the user context, or a guest's session) as
 * the run ends: a page whose Place order lost its answer (the network), loaded again, shows a new
 * checkout, and says from this that the order was placed.
 */
export interface LastOrder {
  orderId: string;
  total: number;
  placedAt: number;
}

/** The user context (per user, shared by all their devices). */
export interface ShopUserContext extends Record<string, unknown> {
  cart?: CartLine[];
  preferences?: Preferences;
  /**
   * The anonymous carts last merged in at a login, by the handle of the session that held them: a login
   * whose session then failed to store (a store outage) leaves that cart in its session, and the login
   * tried again merges only what was added to it since, not the whole cart a second time.
   */
  mergedCarts?: Array<{ from: string; lines: CartLine[] }>;
  /** The order the user's last checkout placed (see LastOrder). */
  lastOrder?: LastOrder;
}

export interface ShopContext {
  config: ShopConfig;
  tether: Tether<ShopSession>;
  db: ShopDb;
  /** The catalog, loaded once: products change only with a new release (seed). */
  catalog: ReadonlyMap<string, Product>;
  products: readonly Product[];
  checkout: FlowRunner;
  /** A guest's checkout, kept in the session (sessionFlows). */
  guestCheckout: FlowRunner<Session<object>>;
  active: ActiveSessions;
  counters: { ordersPlaced: number; rateLimited: number; auth: Map<string, number> };
  /** Failed password checks per account and per address (login, re-authentication, password change, deletion). */
  loginFailures: LoginFailures;
}

export const MAX_RECENTLY_VIEWED = 10;

export function sessionOf(req: FastifyRequest): Session<ShopSession> {
  return req.session;
}

/** The session of a route whose session is optional (`session: 'optional'`): null while the session store is down. */
export function optionalSessionOf(req: FastifyRequest): Session<ShopSession> | null {
  return optionalSession(req);
}

/**
 * An audit record (info): what happened to which account, with the acting session by its handle and
 * users by their IDs. Never a session ID, cookie, CSRF token, password or username as typed. Each
 * event is also counted (`shop_auth_events_total{event}`), for alerts on a rise in failures.
 */
/**
 * Who a per-address limit (new sessions, forged cookies, failed passwords) counts: an IPv4 client by its
 * address, an IPv6 client by its /64, as the engine's `newSessions` does (see `clientNetwork`).
 */
export function clientOf(address: string): string {
  return clientNetwork(address) ?? address;
}

export function audit(ctx: ShopContext, req: FastifyRequest, event: string, fields: Record<string, unknown> = {}): void {
  ctx.counters.auth.set(event, (ctx.counters.auth.get(event) ?? 0) + 1);
  req.log.info({ event, session: sessionOf(req).handle, ...fields }, event);
}

/** The logged-in user's ID, or 401 AUTH_REQUIRED. */
export function requireUser(req: FastifyRequest): string {
  const userId = sessionOf(req).userId;
  if (userId === null) throw authRequired();
  return userId;
}

export interface SessionView {
  authenticated: boolean;
  user: { username: string } | null;
  csrfToken: string;
  cart: CartView;
  preferences: Preferences;
  recentlyViewed: string[];
  /** How many orders this session placed as a guest (0 once logged in): the header then links to them. */
  guestOrders: number;
  /** How long before the idle timeout a signed-in page warns (SHOP_IDLE_WARNING); 0: it does not. */
  idleWarningSeconds: number;
}

/** The cart of whoever makes the request: the user context's when logged in, else the session's. */
export async function currentCart(ctx: ShopContext, session: Session<ShopSession>): Promise<CartView> {
  if (session.userId !== null) {
    const uc = await ctx.tether.users.get<ShopUserContext>(session.userId);
    return cartView(linesOf(uc.cart), ctx.catalog);
  }
  return cartView(linesOf(session.data.cart), ctx.catalog);
}

/** The body of GET /api/session (and of login and registration). Asking for the token creates the session. */
/** The username a signed-in session is for (as the session view names it), null for a guest's. */
export async function usernameOf(ctx: ShopContext, session: Session<ShopSession>): Promise<string | null> {
  if (session.userId === null) return null;
  const username = session.data.username;
  return typeof username === 'string' ? username : (await ctx.db.findUserById(session.userId))?.username ?? '';
}

export async function sessionView(ctx: ShopContext, session: Session<ShopSession>): Promise<SessionView> {
  let lines: CartLine[];
  let prefs: unknown;
  let user: SessionView['user'] = null;
  if (session.userId !== null) {
    const uc = await ctx.tether.users.get<ShopUserContext>(session.userId);
    lines = linesOf(uc.cart);
    prefs = uc.preferences;
    user = { username: (await usernameOf(ctx, session)) ?? '' };
  } else {
    lines = linesOf(session.data.cart);
    prefs = session.data.preferences;
  }
  const recent = Array.isArray(session.data.recentlyViewed) ? session.data.recentlyViewed.filter((id) => ctx.catalog.has(id)) : [];
  return {
    authenticated: session.userId !== null,
    user,
    csrfToken: session.csrfToken,
    cart: cartView(lines, ctx.catalog),
    preferences: preferencesOf(prefs),
    recentlyViewed: recent,
    guestOrders: session.userId === null ? guestOrdersOf(session.data.guestOrders).length : 0,
    idleWarningSeconds: ctx.config.idleWarningSec,
  };
}

/** The order IDs a guest's session data names (`guestOrders`), the latest last; anything else there is ignored. */
export function guestOrdersOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : [];
}
