/**
 * Checkout: shipping → payment → review → confirm, in that order (the server refuses skipping). Like the
 * cart, the routes work on the checkout of whoever makes the request: a logged-in user's is kept in the
 * user context and resumes on any of their devices; a guest's (an email address first, then the same
 * steps) is kept in the session and ends with it, and its order is stored without a user. Confirm is
 * idempotent per flow run: two concurrent confirms place one order (unique idempotency key in the orders
 * table), and a confirm that names its run (`runId` from GET /api/checkout) answers a repeat, a double
 * click or a retry after a lost reply, with the order that run placed. A user signed in longer ago than
 * SHOP_REAUTH_WINDOW (a remembered session) confirms with the password (step-up, ASVS 7.5.3).
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CompleteOptions, FlowRunner, FlowView } from 'tether/flow';
import type { Order } from '../db/index.js';
import { MAX_LINE_QUANTITY, centsToAmount, linesOf, subtractLines } from '../lib/cart.js';
import type { CartLine } from '../lib/cart.js';
import { cartChanged, cartEmpty, checkoutAccountChanged, orderPlaced, validationFailed } from '../lib/errors.js';
import { objectBody, onlyKeys } from '../lib/validate.js';
import { FlowRunChangedError, FlowRunNotCurrentError, FlowStepOutOfOrderError } from 'tether';
import type { Contact, Payment, Shipping } from '../lib/checkout.js';
import { guestOrdersOf, sessionOf, usernameOf } from '../context.js';
import { stepUp } from '../lib/reauth.js';
import type { LastOrder, ShopContext, ShopUserContext } from '../context.js';

type Placed = { order: Order; created: boolean };
type Run = { runId: string; data: Record<string, unknown> };

/** One requester's checkout: its flow bound to where the progress lives, and what its orders are. */
interface Checkout {
  view(): Promise<FlowView>;
  /** With `runId`, only for that run (FLOW_RUN_NOT_CURRENT otherwise), checked in the write that stores the step. */
  submit(step: string, input: unknown, runId: string | undefined): Promise<FlowView>;
  back(runId: string | undefined): Promise<FlowView>;
  complete(action: (run: Run) => Promise<Placed>, options: CompleteOptions<Placed>): Promise<Placed>;
  /** Prefix of its orders' idempotency keys: a guest's runs and a user's never share one. */
  keyPrefix: string;
  /** The cart the order is made of. */
  cart(): Promise<CartLine[]>;
  /** Who the order is for: the user, or the guest's email address from the run's data. */
  owner(data: Record<string, unknown>): { userId: string | null; email: string | null };
  /** Whether a stored order is one this requester placed, and may be answered with. */
  owns(order: Order): boolean;
  /** In the write that ends the run (the user context, or the guest's session data). */
  onCompleted: (c: Record<string, unknown>, placed: Placed) => void;
  /** What the write that ended the last run kept of its order (`lastOrder`), if anything. */
  lastOrder(): Promise<unknown>;
}

/**
 * Only what was ordered leaves the cart (anything added meanwhile stays), and the order is remembered
 * as the last one, for a page that did not get the confirm's answer.
 */
function endRun(c: Record<string, unknown>, { order }: Placed): void {
  c.cart = subtractLines(linesOf(c.cart), order.items);
  c.lastOrder = { orderId: order.id, total: centsToAmount(order.totalCents), placedAt: order.createdAt } satisfies LastOrder;
}

/** How long GET /api/checkout names the last order placed: the time for a page to be loaded again. */
export const LAST_ORDER_SHOWN_MS = 10 * 60_000;

/** The last order, if it was placed within LAST_ORDER_SHOWN_MS; anything else kept there is ignored. */
function recentOrder(value: unknown, now: number): LastOrder | null {
  if (typeof value !== 'object' || value === null) return null;
  const { orderId, total, placedAt } = value as Record<string, unknown>;
  if (typeof orderId !== 'string' || typeof total !== 'number' || typeof placedAt !== 'number') return null;
  return now - placedAt <= LAST_ORDER_SHOWN_MS ? { orderId, total, placedAt } : null;
}

/** How many of its orders a guest's session remembers, for confirms that repeat them and GET /api/orders. */
export const GUEST_ORDERS_KEPT = 10;

function bound<K>(runner: FlowRunner<K>, key: K): Pick<Checkout, 'view' | 'submit' | 'back' | 'complete'> {
  return {
    view: () => runner.view(key),
    submit: (step, input, runId) => runner.submit(key, step, input, { runId }),
    back: (runId) => runner.back(key, { runId }),
    complete: (action, options) => runner.complete(key, action, options),
  };
}

function checkoutOf(ctx: ShopContext, req: FastifyRequest): Checkout {
  const session = sessionOf(req);
  const userId = session.userId;
  if (userId !== null) {
    return {
      ...bound(ctx.checkout, userId),
      keyPrefix: 'checkout',
      cart: async () => linesOf((await ctx.tether.users.get<ShopUserContext>(userId)).cart),
      owner: () => ({ userId, email: null }),
      owns: (o) => o.userId === userId,
      onCompleted: endRun,
      lastOrder: async () => (await ctx.tether.users.get<ShopUserContext>(userId)).lastOrder,
    };
  }
  return {
    ...bound(ctx.guestCheckout, session),
    keyPrefix: 'guest-checkout',
    cart: async () => linesOf(session.data.cart),
    owner: (data) => ({ userId: null, email: (data.contact as Contact).email }),
    // A guest order has no user to compare: the session that placed it keeps its ID, so another
    // session naming the run (its runId leaked) is not answered with it.
    owns: (o) => o.userId === null && guestOrdersOf(session.data.guestOrders).includes(o.id),
    onCompleted: (c, placed) => {
      endRun(c, placed);
      c.guestOrders = [...guestOrdersOf(c.guestOrders).filter((id) => id !== placed.order.id), placed.order.id].slice(-GUEST_ORDERS_KEPT);
    },
    lastOrder: async () => session.data.lastOrder,
  };
}

function flowJson(v: FlowView): Record<string, unknown> {
  return { step: v.step, steps: v.steps, data: v.data, runId: v.runId };
}

const RUN_ID = /^[A-Za-z0-9-]{1,64}$/;

/**
 * Whose checkout a request is meant for, when it says (`account`: the username the page shows, or null
 * for a guest's): a checkout not begun yet has no runId to name, and its first step, sent after a login
 * or logout in another tab, would otherwise be stored into the checkout of whoever the session is for
 * now (a guest's address into the account's saved checkout, one account's into another's).
 */
async function checkAccount(ctx: ShopContext, req: FastifyRequest, account: unknown): Promise<void> {
  if (account === undefined) return;
  if (account !== null && (typeof account !== 'string' || account.length > 100)) throw validationFailed('account must be the username the checkout is for, or null for a guest\'s');
  if (account !== await usernameOf(ctx, sessionOf(req))) throw checkoutAccountChanged();
}

/**
 * A step's (or Back's) body, less the `runId` it may name (the run the page shows, so that a step sent
 * for a run that ended meanwhile is refused rather than taken into the next one) and the `account` it may
 * name (checkAccount).
 */
function stepBody(body: unknown): { runId: string | undefined; account: unknown; input: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { runId: undefined, account: undefined, input: body };
  const { runId, account, ...input } = body as Record<string, unknown>;
  if (runId !== undefined && (typeof runId !== 'string' || !RUN_ID.test(runId))) throw validationFailed('runId must be the runId GET /api/checkout gave');
  return { runId, account, input: Object.hasOwn(body, 'runId') || Object.hasOwn(body, 'account') ? input : body };
}

/**
 * A step (or Back) for the run the page shows, which the flow refuses (FLOW_RUN_NOT_CURRENT) in the
 * write that would store it when that run is no longer the current one. The refusal is answered as the
 * page knows it: the run ended with an order (another tab or device placed it: 409 ORDER_PLACED, which
 * the page says in words) or otherwise (409 FLOW_STEP_OUT_OF_ORDER). Without it, a step of a run whose
 * order was just placed, posted from a second tab, started the next run with it (the first step), and
 * the page showed that new checkout without a word of the order.
 */
async function forRun(ctx: ShopContext, checkout: Checkout, runId: string | undefined, change: () => Promise<FlowView>): Promise<FlowView> {
  try {
    return await change();
  } catch (err) {
    if (!(err instanceof FlowRunNotCurrentError) || runId === undefined) throw err;
    const placed = await ctx.db.findOrderByKey(`${checkout.keyPrefix}:${runId}`);
    if (placed && checkout.owns(placed)) throw orderPlaced(placed.id);
    throw new FlowStepOutOfOrderError('that checkout is no longer the current one; load it again');
  }
}

interface ConfirmBody {
  runId: string | undefined;
  /** Whose checkout the confirm is for, if it says: checkAccount. */
  account: unknown;
  password: unknown;
  /** The cart the review showed, when the client names it: the order is placed only for that cart. */
  items: CartLine[] | undefined;
}

/** The reviewed cart's lines, `[{productId, quantity}]` as the cart's items give them, or 400. */
function reviewedItems(value: unknown): CartLine[] {
  const hint = 'items must be the reviewed cart\'s items, [{productId, quantity}]';
  if (!Array.isArray(value) || value.length > 1000) throw validationFailed(hint);
  return value.map((item: unknown) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw validationFailed(hint);
    const { productId, quantity } = item as Record<string, unknown>;
    if (Object.keys(item).some((k) => k !== 'productId' && k !== 'quantity')) throw validationFailed(hint);
    if (typeof productId !== 'string' || productId.length === 0 || productId.length > 100 || typeof quantity !== 'number'
      || !Number.isInteger(quantity) || quantity < 1 || quantity > MAX_LINE_QUANTITY) throw validationFailed(hint);
    return { productId, quantity };
  });
}

/**
 * What a confirm sends: the run it names, if any (`{}`, or no body, confirms whatever run is current),
 * the items of the cart its review showed, if it names them, and a signed-in user's password when the
 * page asked for it (REAUTH_REQUIRED).
 */
function confirmBody(body: unknown): ConfirmBody {
  if (body === undefined || body === null) return { runId: undefined, account: undefined, password: undefined, items: undefined };
  const b = objectBody(body);
  onlyKeys(b, ['runId', 'account', 'password', 'items']);
  if (b.runId !== undefined && (typeof b.runId !== 'string' || !RUN_ID.test(b.runId))) throw validationFailed('runId must be the runId GET /api/checkout gave');
  return { runId: b.runId, account: b.account, password: b.password, items: b.items === undefined ? undefined : reviewedItems(b.items) };
}

/** Whether two carts hold the same quantity of each product, in any order. */
function sameLines(a: readonly CartLine[], b: readonly CartLine[]): boolean {
  const count = (lines: readonly CartLine[]): Map<string, number> => {
    const m = new Map<string, number>();
    for (const l of lines) m.set(l.productId, (m.get(l.productId) ?? 0) + l.quantity);
    return m;
  };
  const ma = count(a);
  const mb = count(b);
  return ma.size === mb.size && [...ma].every(([id, q]) => mb.get(id) === q);
}

/** What a confirm answers: the order placed (or placed already by the same run). */
function placedJson(order: Order): Record<string, unknown> {
  return { orderId: order.id, total: centsToAmount(order.totalCents) };
}

/**
 * Places the order for the cart as it is now; with `reviewed` (the items the client's review showed),
 * only if the cart is still that one: a cart changed meanwhile (another tab added to it) is 409
 * CART_CHANGED, so nobody orders what they did not review.
 */
async function placeOrder(ctx: ShopContext, checkout: Checkout, { runId, data }: Run, reviewed: CartLine[] | undefined): Promise<Placed> {
  const idempotencyKey = `${checkout.keyPrefix}:${runId}`;
  const lines = (await checkout.cart()).filter((l) => ctx.catalog.has(l.productId));
  if (lines.length === 0 || (reviewed !== undefined && !sameLines(lines, reviewed))) {
    // A concurrent confirm of this run may have placed the order and taken it out of the cart already.
    const placed = await ctx.db.findOrderByKey(idempotencyKey);
    if (placed) return { order: placed, created: false };
    throw lines.length === 0 ? cartEmpty() : cartChanged();
  }
  const items = lines.map((l) => {
    const p = ctx.catalog.get(l.productId)!;
    return { productId: p.id, name: p.name, quantity: l.quantity, priceCents: p.priceCents };
  });
  const payment = data.payment as Payment;
  return ctx.db.placeOrder({
    id: `ord_${randomBytes(9).toString('base64url')}`,
    ...checkout.owner(data),
    idempotencyKey,
    items,
    totalCents: items.reduce((sum, l) => sum + l.quantity * l.priceCents, 0),
    shipping: { ...(data.shipping as Shipping) },
    payment: { brand: payment.brand, last4: payment.last4, expiry: payment.expiry },
    createdAt: Date.now(),
  });
}

/** Steps that take input, in either flow; posting one the requester's flow lacks is 404 FLOW_STEP_UNKNOWN. */
function postableSteps(ctx: ShopContext): string[] {
  const names = [ctx.guestCheckout, ctx.checkout].flatMap((r) => r.flow.steps.filter((s) => s.parse).map((s) => s.name));
  return [...new Set(names)];
}

export function checkoutRoutes(app: FastifyInstance, ctx: ShopContext): void {
  // With the order the last run placed, lately: a page that lost the confirm's answer shows the next run,
  // and says that the order went through.
  app.get('/api/checkout', async (req) => {
    const checkout = checkoutOf(ctx, req);
    const [view, last] = await Promise.all([checkout.view(), checkout.lastOrder()]);
    return { ...flowJson(view), lastOrder: recentOrder(last, Date.now()) };
  });

  for (const step of postableSteps(ctx)) {
    app.post(`/api/checkout/${step}`, async (req) => {
      const checkout = checkoutOf(ctx, req);
      const { runId, account, input } = stepBody(req.body);
      await checkAccount(ctx, req, account);
      return flowJson(await forRun(ctx, checkout, runId, () => checkout.submit(step, input, runId)));
    });
  }

  app.post('/api/checkout/back', async (req) => {
    const checkout = checkoutOf(ctx, req);
    const { runId, account } = stepBody(req.body);
    await checkAccount(ctx, req, account);
    return flowJson(await forRun(ctx, checkout, runId, () => checkout.back(runId)));
  });

  app.post('/api/checkout/confirm', async (req, reply) => {
    const checkout = checkoutOf(ctx, req);
    const { runId, account, password, items } = confirmBody(req.body);
    await checkAccount(ctx, req, account);
    const userId = sessionOf(req).userId;
    if (userId === null && password !== undefined) throw validationFailed('a guest checkout takes no password');
    // The order a named run placed, if it did (for this requester): a repeat of that confirm gets it again.
    const placedBy = async (): Promise<Order | null> => {
      if (runId === undefined) return null;
      const placed = await ctx.db.findOrderByKey(`${checkout.keyPrefix}:${runId}`);
      return placed && checkout.owns(placed) ? placed : null;
    };
    let placed = await placedBy();
    if (placed) return reply.code(200).send(placedJson(placed));
    if (runId !== undefined && (await checkout.view()).runId !== runId) {
      // Ended meanwhile by a concurrent confirm of the same run, or not the current run at all.
      placed = await placedBy();
      if (placed) return reply.code(200).send(placedJson(placed));
      throw new FlowStepOutOfOrderError('that checkout is no longer the current one; load it again');
    }
    // Placing an order is the shop's high-value action: a sign-in long ago asks for the password first.
    if (userId !== null) await stepUp(ctx, req, userId, password);
    try {
      // The run named is checked again in the write that takes it: one that ended since the check above
      // (a confirm on another device), whose next run is ready already, is not completed in its place.
      const { order, created } = await checkout.complete((run) => placeOrder(ctx, checkout, run, items), { onCompleted: checkout.onCompleted, runId });
      if (created) ctx.counters.ordersPlaced++;
      return reply.code(created ? 201 : 200).send(placedJson(order));
    } catch (err) {
      if (err instanceof FlowRunChangedError) {
        // The order was placed, with the checkout as it was confirmed, but placing it outlasted the
        // flow's hold and the checkout was changed meanwhile (another device): the change is kept, in a
        // checkout that goes on under a new runId, and the answer says so beside the order.
        const { order, created } = err.result as Placed;
        if (created) ctx.counters.ordersPlaced++;
        return reply.code(created ? 201 : 200).send({ ...placedJson(order), checkoutChanged: true });
      }
      placed = err instanceof FlowStepOutOfOrderError || err instanceof FlowRunNotCurrentError ? await placedBy() : null;
      if (placed) return reply.code(200).send(placedJson(placed));
      if (err instanceof FlowRunNotCurrentError) throw new FlowStepOutOfOrderError('that checkout is no longer the current one; load it again');
      throw err;
    }
  });
}
