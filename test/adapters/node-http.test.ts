/** tether/node over a plain node:http server: the shared adapter suite. */
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import { withSessions } from '../../src/adapters/node-http/index.js';
import { runAdapterSuite, listen, routeFor } from '../../src/testing/adapter-suite.js';
import type { RouteResult } from '../../src/testing/adapter-suite.js';
import { readJson } from '../helpers/body.js';

function send(res: ServerResponse, out: RouteResult): void {
  if (out.redirect) {
    res.writeHead(302, { location: out.redirect });
    res.end();
    return;
  }
  res.statusCode = out.status ?? 200;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(out.json ?? {}));
}

runAdapterSuite({
  name: 'node:http',
  async start(tether, routes) {
    const handler = withSessions(tether, async (req, res, session) => {
      const route = routeFor(routes, req.method ?? 'GET', req.url ?? '/');
      if (!route) {
        res.statusCode = 404;
        res.end();
        return;
      }
      send(res, await route.handle(session, await readJson(req)));
    }, {
      csrf: (req) => routeFor(routes, req.method ?? 'GET', req.url ?? '/')?.csrf !== false,
      session: (req) => routeFor(routes, req.method ?? 'GET', req.url ?? '/')?.session ?? 'required',
      // The suite's failing routes fail on purpose; the default would print every stack to stderr.
      onError: () => {},
    });
    return listen(createServer((req, res) => void handler(req, res)));
  },
});
