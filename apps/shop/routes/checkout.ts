/**
 * Checkout, login required: shipping → payment → review → confirm, in that order (the server refuses
 * skipping), resumable on any device of the user. Confirm is idempotent per flow run: two concurrent
 * confirms place one order (unique idempotency key in the orders table), and a confirm that names its
 * run (`runId` from GET /api/checkout) answers a repeat, a double click or a retry after a lost reply,
 * with the order that run placed.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FlowView } from 'tether/flow';
import type { Order } from '../db/index.js';
import { centsToAmount, linesOf, subtractLines } from '../lib/cart.js';
import { cartEmpty, validationFailed } from '../lib/errors.js';
import { objectBody, onlyKeys } from '../lib/validate.js';
import { FlowStepOutOfOrderError } from 'tether';
import type { Payment, Shipping } from '../lib/checkout.js';
import { requireUser } from '../context.js';
import type { ShopContext, ShopUserContext } from '../context.js';

function flowJson(v: FlowView): Record<string, unknown> {
  return { step: v.step, steps: v.steps, data: v.data, runId: v.runId };
}

/** The run a confirm names, if any: `{}` (or no body) confirms whatever run is current. */
function confirmedRun(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  const b = objectBody(body);
  onlyKeys(b, ['runId']);
  if (b.runId === undefined) return undefined;
  if (typeof b.runId !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(b.runId)) throw validationFailed('runId must be the runId GET /api/checkout gave');
  return b.runId;
}

/** What a confirm answers: the order placed (or placed already by the same run). */
function placedJson(order: Order): Record<string, unknown> {
  return { orderId: order.id, total: centsToAmount(order.totalCents) };
}

async function placeOrder(ctx: ShopContext, userId: string, runId: string, data: Record<string, unknown>): Promise<{ order: Order; created: boolean }> {
  const uc = await ctx.tether.users.get<ShopUserContext>(userId);
  const lines = linesOf(uc.cart).filter((l) => ctx.catalog.has(l.productId));
  if (lines.length === 0) {
    // A concurrent confirm of this run may have placed the order and emptied the cart already.
    const placed = await ctx.db.findOrderByKey(`checkout:${runId}`);
    if (placed) return { order: placed, created: false };
    throw cartEmpty();
  }
  const items = lines.map((l) => {
    const p = ctx.catalog.get(l.productId)!;
    return { productId: p.id, name: p.name, quantity: l.quantity, priceCents: p.priceCents };
  });
  const payment = data.payment as Payment;
  return ctx.db.placeOrder({
    id: `ord_${randomBytes(9).toString('base64url')}`,
    userId,
    email: null,
    idempotencyKey: `checkout:${runId}`,
    items,
    totalCents: items.reduce((sum, l) => sum + l.quantity * l.priceCents, 0),
    shipping: { ...(data.shipping as Shipping) },
    payment: { brand: payment.brand, last4: payment.last4, expiry: payment.expiry },
    createdAt: Date.now(),
  });
}

export function checkoutRoutes(app: FastifyInstance, ctx: ShopContext): void {
  app.get('/api/checkout', async (req) => flowJson(await ctx.checkout.view(requireUser(req))));

  for (const step of ['shipping', 'payment'] as const) {
    app.post(`/api/checkout/${step}`, async (req) => flowJson(await ctx.checkout.submit(requireUser(req), step, req.body)));
  }

  app.post('/api/checkout/back', async (req) => flowJson(await ctx.checkout.back(requireUser(req))));

  app.post('/api/checkout/confirm', async (req, reply) => {
    const userId = requireUser(req);
    const runId = confirmedRun(req.body);
    // The order a named run placed, if it did (for this user): a repeat of that confirm gets it again.
    const placedBy = async (): Promise<Order | null> => {
      if (runId === undefined) return null;
      const placed = await ctx.db.findOrderByKey(`checkout:${runId}`);
      return placed && placed.userId === userId ? placed : null;
    };
    let placed = await placedBy();
    if (placed) return reply.code(200).send(placedJson(placed));
    if (runId !== undefined && (await ctx.checkout.view(userId)).runId !== runId) {
      // Ended meanwhile by a concurrent confirm of the same run, or not the current run at all.
      placed = await placedBy();
      if (placed) return reply.code(200).send(placedJson(placed));
      throw new FlowStepOutOfOrderError('that checkout is no longer the current one; load it again');
    }
    try {
      const { order, created } = await ctx.checkout.complete(userId, (run) => placeOrder(ctx, userId, run.runId, run.data), {
        // In the same write that ends the run: only what was ordered leaves the cart.
        onCompleted: (c: ShopUserContext, result) => {
          c.cart = subtractLines(linesOf(c.cart), result.order.items);
        },
      });
      if (created) ctx.counters.ordersPlaced++;
      return reply.code(created ? 201 : 200).send(placedJson(order));
    } catch (err) {
      placed = err instanceof FlowStepOutOfOrderError ? await placedBy() : null;
      if (placed) return reply.code(200).send(placedJson(placed));
      throw err;
    }
  });
}
