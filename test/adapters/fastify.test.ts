/** tether/fastify on Fastify 5: the shared adapter suite. */
import Fastify from 'fastify';
import { optionalSession, tetherErrorHandler, tetherPlugin } from '../../src/adapters/fastify/index.js';
import { runAdapterSuite } from '../../src/testing/adapter-suite.js';

runAdapterSuite({
  name: 'fastify',
  async start(tether, routes) {
    const app = Fastify();
    await app.register(tetherPlugin, { tether });
    // As docs/errors.md advises: without it Fastify answers a thrown value it cannot read with 200.
    app.setErrorHandler(tetherErrorHandler);
    for (const route of routes) {
      app.route({
        method: route.method,
        url: route.path,
        config: { tether: { ...(route.csrf === false ? { csrf: false } : {}), ...(route.session === 'optional' ? { session: 'optional' as const } : {}) } },
        handler: async (req, reply) => {
          const out = await route.handle(route.session === 'optional' ? optionalSession(req) : req.session, req.body);
          if (out.redirect) return reply.redirect(out.redirect, 302);
          return reply.code(out.status ?? 200).send(out.json ?? {});
        },
      });
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
});
