/** Health and metrics endpoints for load balancers and Prometheus. @module */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { clusterMetrics, isClusterWorker } from 'tether/cluster';
import type { ShopContext } from '../context.js';

export function systemRoutes(app: FastifyInstance, ctx: ShopContext, registry: Registry): void {
  app.get('/healthz', async () => ({ status: 'ok', node: ctx.config.nodeName, pid: process.pid }));

  // Under the cluster every worker's series, collected by the primary; this worker's alone if that fails.
  app.get('/metrics', async (_req, reply) => {
    let text: string | undefined;
    if (isClusterWorker()) {
      try {
        text = await clusterMetrics();
      } catch (err) {
        ctx.config.log(`warning: /metrics answers for this worker only: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    text ??= await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}
