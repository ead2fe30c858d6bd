/** tether/express (native middleware) on Express 5: the shared adapter suite. */
import { createServer } from 'node:http';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { errorResponse } from '../../src/adapters/shared/http.js';
import { sessions, sessionOf, optionalSessionOf } from '../../src/adapters/express/index.js';
import { runAdapterSuite, listen, routeFor } from '../../src/testing/adapter-suite.js';
import type { RouteResult, SuiteData } from '../../src/testing/adapter-suite.js';

function send(res: Response, out: RouteResult): void {
  if (out.redirect) res.redirect(302, out.redirect);
  else res.status(out.status ?? 200).json(out.json ?? {});
}

runAdapterSuite({
  name: 'express',
  async start(tether, routes) {
    const app = express();
    app.use(sessions(tether, {
      csrf: (req) => routeFor(routes, req.method, req.originalUrl)?.csrf !== false,
      session: (req) => routeFor(routes, req.method, req.originalUrl)?.session ?? 'required',
    }));
    app.use(express.json());
    for (const route of routes) {
      const method = route.method === 'GET' ? 'get' : 'post';
      app[method](route.path, async (req, res) => send(res, await route.handle(route.session === 'optional' ? optionalSessionOf<SuiteData>(req) : sessionOf<SuiteData>(req), req.body)));
    }
    // An app's own error handler; without it Express's default one prints every stack to stderr.
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      void _next;
      const { status, body } = errorResponse(err);
      res.status(status).json(body);
    });
    return listen(createServer(app));
  },
});
