/** tether/hono on Node through @hono/node-server: the shared adapter suite. */
import { Hono } from 'hono';
import { optionalSession, sessions } from '../../src/adapters/hono/index.js';
import type { TetherEnv } from '../../src/adapters/hono/index.js';
import { runAdapterSuite, routeFor } from '../../src/testing/adapter-suite.js';
import type { SuiteData } from '../../src/testing/adapter-suite.js';
import { serveHono } from '../helpers/hono.js';

runAdapterSuite({
  name: 'hono',
  async start(tether, routes) {
    const app = new Hono<TetherEnv<SuiteData>>();
    app.use(sessions(tether, {
      csrf: (c) => routeFor(routes, c.req.method, c.req.path)?.csrf !== false,
      session: (c) => routeFor(routes, c.req.method, c.req.path)?.session ?? 'required',
    }));
    for (const route of routes) {
      app.on(route.method, route.path, async (c) => {
        const body: unknown = /json/.test(c.req.header('content-type') ?? '') ? await c.req.json().catch(() => undefined) : undefined;
        const out = await route.handle(route.session === 'optional' ? optionalSession(c) : c.get('session'), body);
        if (out.redirect) return c.redirect(out.redirect, 302);
        return c.json(out.json ?? {}, (out.status ?? 200) as 200);
      });
    }
    app.onError((_err, c) => c.json({ error: { code: 'INTERNAL_ERROR', message: 'internal server error' } }, 500));
    return serveHono(app);
  },
});
