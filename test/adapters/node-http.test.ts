/** tether/node over a plain node:http server: the shared adapter suite. */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { withSessions } from '../../src/adapters/node-http/index.js';
import { runAdapterSuite, listen, routeFor } from '../../src/testing/adapter-suite.js';
import type { RouteResult } from '../../src/testing/adapter-suite.js';

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text && /json/.test(req.headers['content-type'] ?? '') ? JSON.parse(text) : undefined;
}

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
      // The suite's failing routes fail on purpose; the default would print every stack to stderr.
      onError: () => {},
    });
    return listen(createServer(handler));
  },
});
