/** The catalog: read-only, and browsing it never creates a session. @module */
import type { FastifyInstance } from 'fastify';
import type { Product } from '../db/index.js';
import { centsToAmount } from '../lib/cart.js';
import { productNotFound } from '../lib/errors.js';
import { MAX_RECENTLY_VIEWED, optionalSessionOf } from '../context.js';
import type { ShopContext } from '../context.js';

export function productJson(p: Product): Record<string, unknown> {
  return { id: p.id, name: p.name, price: centsToAmount(p.priceCents), currency: 'USD', description: p.description, category: p.category, hue: p.hue };
}

export function catalogRoutes(app: FastifyInstance, ctx: ShopContext): void {
  const list = ctx.products.map(productJson);

  // The same list for everyone: it opens no session, so it costs no store call and still answers while
  // the session store is down (the catalog page stays usable), whatever cookie comes with it.
  const noSession = { config: { tether: { session: false } } };
  app.get('/api/products', noSession, async () => list);
  // With the slash too: `/api/products/` would otherwise reach `:id` as an empty ID and say no such product.
  app.get('/api/products/', noSession, async () => list);

  // The session only records the view: optional, so the product still answers while the session store
  // is down (the view then goes unrecorded, and the visitor's cookie is left as it is).
  app.get<{ Params: { id: string } }>('/api/products/:id', { config: { tether: { session: 'optional' } } }, async (req) => {
    const product = ctx.catalog.get(req.params.id);
    if (!product) throw productNotFound();
    const session = optionalSessionOf(req);
    // Only an existing session records the view: browsing must not mint sessions (flooding).
    if (session !== null && !session.isNew) {
      await session.update((d) => {
        const prev = Array.isArray(d.recentlyViewed) ? d.recentlyViewed.filter((id) => typeof id === 'string' && id !== product.id) : [];
        d.recentlyViewed = [product.id, ...prev].slice(0, MAX_RECENTLY_VIEWED);
      });
    }
    return productJson(product);
  });
}
