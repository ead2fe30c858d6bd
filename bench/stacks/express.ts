/**
 * The workload on Express 5: without sessions, with express-session (MemoryStore or connect-redis,
 * configured as its README recommends: resave false, saveUninitialized false) and with Tether's
 * Express middleware.
 * @module
 */
import { createServer } from 'node:http';
import express from 'express';
import type { Request, Response, Express } from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { anchorRedisClient } from './redis-client.js';
import { sessions, sessionOf } from 'tether/express';
import type { StackSpec } from '../lib/stacks.js';
import { ROUTES, BENCH_SECRET, DUMMY_CSRF, SESSION_KEYS, readBody, seedData, loginUser, raceDelay } from '../lib/workload.js';
import type { ShopSession } from '../lib/workload.js';
import type { Counter, RunningApp, StackEnv } from './context.js';
import { tetherFor } from './tether.js';
import { FloorSessions } from './floor.js';
import type { FloorSession } from './floor.js';

function send(res: Response, body: string): void {
  res.type('application/json').send(body);
}

function seedOf(req: Request): ShopSession {
  return seedData(Number(req.query.i) || 0);
}

function bare(app: Express, counter: Counter): void {
  const fake = seedData(0);
  app.get(ROUTES.read, (_req, res) => { counter.handled++; send(res, readBody(fake)); });
  app.post(ROUTES.write, (_req, res) => { counter.handled++; fake.n++; send(res, readBody(fake)); });
  app.post(ROUTES.login, (_req, res) => { counter.handled++; fake.user = loginUser(counter.handled); send(res, `{"csrf":"${DUMMY_CSRF}"}`); });
  app.post(ROUTES.seed, (_req, res) => { counter.handled++; send(res, `{"csrf":"${DUMMY_CSRF}"}`); });
}

/** The floor (bench/stacks/floor.ts) as one middleware. */
function floor(app: Express, counter: Counter): void {
  const sessions = new FloorSessions();
  const at = (req: Request): FloorSession | null => (req as unknown as { floor: FloorSession | null }).floor;
  app.use((req, _res, next) => {
    (req as unknown as { floor: FloorSession | null }).floor = sessions.find(req.headers.cookie);
    next();
  });
  app.get(ROUTES.read, (req, res) => { counter.handled++; send(res, readBody(at(req)?.data)); });
  app.post(ROUTES.write, (req, res) => {
    counter.handled++;
    const d = at(req)!.data;
    d.n++;
    send(res, readBody(d));
  });
  app.post(ROUTES.login, (req, res) => {
    counter.handled++;
    const s = at(req)!;
    s.data.user = loginUser(counter.handled);
    res.setHeader('set-cookie', sessions.regenerate(s));
    send(res, `{"csrf":"${DUMMY_CSRF}"}`);
  });
  app.post(ROUTES.race, async (req, res) => {
    counter.handled++;
    const d = at(req)!.data;
    const r = d.r;
    await raceDelay();
    d.r = r + 1;
    send(res, readBody(d));
  });
  app.post(ROUTES.seed, (req, res) => {
    counter.handled++;
    res.setHeader('set-cookie', sessions.create(seedOf(req)));
    send(res, `{"csrf":"${DUMMY_CSRF}"}`);
  });
}

async function withExpressSession(app: Express, spec: StackSpec, env: StackEnv, counter: Counter): Promise<() => Promise<void>> {
  let close = async (): Promise<void> => {};
  let store: session.Store | undefined;
  if (spec.store === 'redis') {
    const client = await anchorRedisClient(env.redisUrl);
    store = new RedisStore({ client });
    close = async () => { await client.quit(); };
  }
  app.use(session({ secret: BENCH_SECRET, resave: false, saveUninitialized: false, ...(store ? { store } : {}) }));
  const data = (req: Request): ShopSession => req.session as unknown as ShopSession;
  app.get(ROUTES.read, (req, res) => { counter.handled++; send(res, readBody(data(req))); });
  app.post(ROUTES.write, (req, res) => {
    counter.handled++;
    const d = data(req);
    d.n = (d.n ?? 0) + 1;
    send(res, readBody(d));
  });
  app.post(ROUTES.login, (req, res, next) => {
    counter.handled++;
    // express-session's regenerate() drops the data; carry it over as Tether and @fastify/session do.
    const old = data(req);
    const keep = Object.fromEntries(SESSION_KEYS.map((k) => [k, old[k]]));
    req.session.regenerate((err) => {
      if (err) return next(err);
      Object.assign(data(req), keep, { user: loginUser(counter.handled) });
      send(res, `{"csrf":"${DUMMY_CSRF}"}`);
    });
  });
  app.post(ROUTES.race, async (req, res) => {
    counter.handled++;
    const r = Number(data(req).r ?? 0);
    await raceDelay();
    data(req).r = r + 1;
    send(res, readBody(data(req)));
  });
  app.post(ROUTES.seed, (req, res) => {
    counter.handled++;
    Object.assign(data(req), seedOf(req));
    send(res, `{"csrf":"${DUMMY_CSRF}"}`);
  });
  return close;
}

async function withTether(app: Express, spec: StackSpec, env: StackEnv, counter: Counter): Promise<() => Promise<void>> {
  const tether = await tetherFor(spec.store, env);
  app.use(sessions(tether, { csrf: (req) => req.path !== ROUTES.seed }));
  const s = (req: Request) => sessionOf<ShopSession>(req);
  app.get(ROUTES.read, (req, res) => { counter.handled++; send(res, readBody(s(req).data)); });
  app.post(ROUTES.write, async (req, res) => {
    counter.handled++;
    await s(req).update((d) => { d.n = (d.n ?? 0) + 1; });
    send(res, readBody(s(req).data));
  });
  app.post(ROUTES.login, (req, res) => {
    counter.handled++;
    s(req).login(loginUser(counter.handled));
    send(res, `{"csrf":"${s(req).csrfToken}"}`);
  });
  app.post(ROUTES.race, async (req, res) => {
    counter.handled++;
    const r = Number(s(req).get('r') ?? 0);
    await raceDelay();
    s(req).set('r', r + 1);
    send(res, readBody(s(req).data));
  });
  app.post(ROUTES.seed, (req, res) => {
    counter.handled++;
    Object.assign(s(req).data, seedOf(req));
    send(res, `{"csrf":"${s(req).csrfToken}"}`);
  });
  return () => tether.close();
}

export async function buildExpress(spec: StackSpec, env: StackEnv, counter: Counter): Promise<RunningApp> {
  const app = express();
  let close = async (): Promise<void> => {};
  if (spec.layer === 'none') bare(app, counter);
  else if (spec.layer === 'floor') floor(app, counter);
  else if (spec.layer === 'express-session') close = await withExpressSession(app, spec, env, counter);
  else if (spec.layer === 'tether') close = await withTether(app, spec, env, counter);
  else throw new Error(`Express has no layer ${spec.layer}`);
  return { server: createServer(app), close };
}
