/**
 * The workload on plain node:http: without sessions (the limit any session layer is measured
 * against) and with Tether through `withSessions` from tether/node.
 * @module
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { withSessions } from 'tether/node';
import type { StackSpec } from '../lib/stacks.js';
import { ROUTES, DUMMY_CSRF, readBody, seedData, loginUser, raceDelay } from '../lib/workload.js';
import type { ShopSession } from '../lib/workload.js';
import { seedIndex } from './context.js';
import type { Counter, RunningApp, StackEnv } from './context.js';
import { tetherFor } from './tether.js';

function send(res: ServerResponse, body: string, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}

function route(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Bare: the same routes and bodies, with a process-wide object standing in for the session. */
function bareHandler(counter: Counter) {
  const fake = seedData(0);
  return (req: IncomingMessage, res: ServerResponse): void => {
    counter.handled++;
    switch (route(req)) {
      case ROUTES.read: return send(res, readBody(fake));
      case ROUTES.write: fake.n++; return send(res, readBody(fake));
      case ROUTES.login: fake.user = loginUser(counter.handled); return send(res, `{"csrf":"${DUMMY_CSRF}"}`);
      case ROUTES.seed: return send(res, `{"csrf":"${DUMMY_CSRF}"}`);
      case ROUTES.race: {
        const r = fake.r;
        void raceDelay().then(() => {
          fake.r = r + 1;
          send(res, readBody(fake));
        });
        return;
      }
      default: return send(res, '{"error":"not found"}', 404);
    }
  };
}

export async function buildNode(spec: StackSpec, env: StackEnv, counter: Counter): Promise<RunningApp> {
  if (spec.layer === 'none') {
    const server = createServer(bareHandler(counter));
    return { server, close: async () => {} };
  }
  const tether = await tetherFor(spec.store, env);
  const handler = withSessions<ShopSession>(tether, async (req, res, session) => {
    counter.handled++;
    switch (route(req)) {
      case ROUTES.read: return send(res, readBody(session.data));
      case ROUTES.write:
        await session.update((d) => { d.n = (d.n ?? 0) + 1; });
        return send(res, readBody(session.data));
      case ROUTES.login:
        session.login(loginUser(counter.handled));
        return send(res, `{"csrf":"${session.csrfToken}"}`);
      case ROUTES.race: {
        // Deliberately naive read-modify-write, the same code every stack runs.
        const r = Number(session.get('r') ?? 0);
        await raceDelay();
        session.set('r', r + 1);
        return send(res, readBody(session.data));
      }
      case ROUTES.seed:
        Object.assign(session.data, seedData(seedIndex(req.url)));
        return send(res, `{"csrf":"${session.csrfToken}"}`);
      default: return send(res, '{"error":"not found"}', 404);
    }
  }, { csrf: (req) => route(req) !== ROUTES.seed });
  const server = createServer((req, res) => void handler(req, res));
  return { server, close: () => tether.close() };
}
