/**
 * The cart: in the session while anonymous, in the user context once logged in (so every device of the
 * user sees one cart). Every change is a replayable update, so concurrent adds all count.
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MAX_LINE_QUANTITY, addLine, cartView, linesOf, setLine } from '../lib/cart.js';
import type { CartLine, CartView } from '../lib/cart.js';
import { productNotFound, validationFailed } from '../lib/errors.js';
import { integerField, objectBody, onlyKeys } from '../lib/validate.js';
import { currentCart, sessionOf } from '../context.js';
import type { ShopContext, ShopUserContext } from '../context.js';

type Change = (lines: CartLine[]) => CartLine[];

async function changeCart(ctx: ShopContext, req: FastifyRequest, change: Change): Promise<CartView> {
  const session = sessionOf(req);
  if (session.userId !== null) {
    const uc = await ctx.tether.users.update<ShopUserContext>(session.userId, (c) => {
      c.cart = change(linesOf(c.cart));
    });
    return cartView(linesOf(uc.cart), ctx.catalog);
  }
  await session.update((d) => {
    d.cart = change(linesOf(d.cart));
  });
  return cartView(linesOf(session.data.cart), ctx.catalog);
}

function knownProduct(ctx: ShopContext, id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 100) throw validationFailed('productId is required');
  if (!ctx.catalog.has(id)) throw productNotFound();
  return id;
}

export function cartRoutes(app: FastifyInstance, ctx: ShopContext): void {
  app.get('/api/cart', async (req) => currentCart(ctx, sessionOf(req)));

  app.post('/api/cart/items', async (req, reply: FastifyReply) => {
    const b = objectBody(req.body);
    onlyKeys(b, ['productId', 'quantity']);
    const quantity = integerField(b, 'quantity', 1, MAX_LINE_QUANTITY, 1);
    const productId = knownProduct(ctx, b.productId);
    const cart = await changeCart(ctx, req, (lines) => addLine(lines, productId, quantity));
    return reply.code(201).send(cart);
  });

  app.patch<{ Params: { productId: string } }>('/api/cart/items/:productId', async (req) => {
    const b = objectBody(req.body);
    onlyKeys(b, ['quantity']);
    const quantity = integerField(b, 'quantity', 0, MAX_LINE_QUANTITY);
    const productId = knownProduct(ctx, req.params.productId);
    return changeCart(ctx, req, (lines) => setLine(lines, productId, quantity));
  });

  app.delete<{ Params: { productId: string } }>('/api/cart/items/:productId', async (req) => {
    const productId = knownProduct(ctx, req.params.productId);
    return changeCart(ctx, req, (lines) => setLine(lines, productId, 0));
  });
}
