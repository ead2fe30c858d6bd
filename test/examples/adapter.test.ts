/**
 * docs/adapters.md's adapter (examples/adapter.ts, equal to the doc's block) passes the adapter
 * conformance suite that the bundled adapters pass.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { runAdapterSuite, listen, routeFor } from '../../src/testing/adapter-suite.js';
import { sessionsFor } from '../../examples/adapter.js';
import { readJson } from '../helpers/body.js';

it('adapters.md when read then shows examples/adapter.ts, equal to its file', () => {
  const blocks = [...readFileSync('docs/adapters.md', 'utf8').matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)];
  assert.deepEqual(blocks.map((m) => m[1]), ['examples/adapter.ts']);
  assert.equal(blocks[0]![2], readFileSync('examples/adapter.ts', 'utf8'), 'examples/adapter.ts differs from its block in docs/adapters.md');
});

runAdapterSuite({
  name: 'docs/adapters.md example',
  // The example has no optional sessions (tether/node's `session` option): every route of its app needs one.
  optionalSessions: false,
  async start(tether, routes) {
    const routeOf = (req: IncomingMessage) => routeFor(routes, req.method ?? 'GET', req.url ?? '/');
    const handler = sessionsFor(tether, async (req, res, session) => {
      const route = routeOf(req);
      if (!route) {
        res.statusCode = 404;
        return '';
      }
      const out = await route.handle(session, await readJson(req));
      if (out.redirect) {
        res.statusCode = 302;
        res.setHeader('location', out.redirect);
        return '';
      }
      res.statusCode = out.status ?? 200;
      res.setHeader('content-type', 'application/json');
      return JSON.stringify(out.json ?? {});
    }, { csrf: (req) => routeOf(req)?.csrf !== false });
    return listen(createServer((req, res) => void handler(req, res)));
  },
});
