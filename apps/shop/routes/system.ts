/** Health and metrics endpoints for load balancers and Prometheus. @module */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { ShopContext } from '../context.js';

export function systemRoutes(app: FastifyInstance, ctx: ShopContext, registry: Registry): void {
  app.get('/healthz', async () => ({ status: 'ok', node: ctx.config.nodeName, pid: process.pid }));

  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}
