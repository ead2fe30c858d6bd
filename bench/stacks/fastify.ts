/**
 * The workload on Fastify 5: without sessions, with @fastify/session over connect-redis (its
 * defaults but saveUninitialized false, and secure false because the benchmark speaks plain HTTP),
 * and with Tether's Fastify plugin.
 * @module
 */
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { RedisStore } from 'connect-redis';
import { anchorRedisClient } from './redis-client.js';
import { tetherPlugin } from 'tether/fastify';
import type { StackSpec } from '../lib/stacks.js';
import { ROUTES, BENCH_SECRET, DUMMY_CSRF, SESSION_KEYS, readBody, seedData, loginUser, raceDelay } from '../lib/workload.js';
import type { ShopSession } from '../lib/workload.js';
import type { Counter, RunningApp, StackEnv } from './context.js';
import { tetherFor } from './tether.js';
import { FloorSessions } from './floor.js';
import type { FloorSession } from './floor.js';

// Loaded untyped: @fastify/session's declaration of `request.session` and Tether's cannot share one
// type-check, and both plugins are used in this one program.
const require = createRequire(import.meta.url);

function json(reply: FastifyReply, body: string): string {
  reply.type('application/json');
  return body;
}

function seedOf(req: FastifyRequest): ShopSession {
  return seedData(Number((req.query as Record<string, string>).i) || 0);
}

function bare(app: FastifyInstance, counter: Counter): void {
  const fake = seedData(0);
  app.get(ROUTES.read, async (_req, reply) => { counter.handled++; return json(reply, readBody(fake)); });
  app.post(ROUTES.write, async (_req, reply) => { counter.handled++; fake.n++; return json(reply, readBody(fake)); });
  app.post(ROUTES.login, async (_req, reply) => { counter.handled++; fake.user = loginUser(counter.handled); return json(reply, `{"csrf":"${DUMMY_CSRF}"}`); });
  app.post(ROUTES.seed, async (_req, reply) => { counter.handled++; return json(reply, `{"csrf":"${DUMMY_CSRF}"}`); });
}

/** The floor (bench/stacks/floor.ts) as one onRequest hook. */
function floor(app: FastifyInstance, counter: Counter): void {
  const sessions = new FloorSessions();
  app.decorateRequest('floor', null);
  const at = (req: FastifyRequest): FloorSession | null => (req as unknown as { floor: FloorSession | null }).floor;
  app.addHook('onRequest', (req, _reply, done) => {
    (req as unknown as { floor: FloorSession | null }).floor = sessions.find(req.headers.cookie);
    done();
  });
  app.get(ROUTES.read, async (req, reply) => { counter.handled++; return json(reply, readBody(at(req)?.data)); });
  app.post(ROUTES.write, async (req, reply) => {
    counter.handled++;
    const d = at(req)!.data;
    d.n++;
    return json(reply, readBody(d));
  });
  app.post(ROUTES.login, async (req, reply) => {
    counter.handled++;
    const s = at(req)!;
    s.data.user = loginUser(counter.handled);
    reply.header('set-cookie', sessions.regenerate(s));
    return json(reply, `{"csrf":"${DUMMY_CSRF}"}`);
  });
  app.post(ROUTES.race, async (req, reply) => {
    counter.handled++;
    const d = at(req)!.data;
    const r = d.r;
    await raceDelay();
    d.r = r + 1;
    return json(reply, readBody(d));
  });
  app.post(ROUTES.seed, async (req, reply) => {
    counter.handled++;
    reply.header('set-cookie', sessions.create(seedOf(req)));
    return json(reply, `{"csrf":"${DUMMY_CSRF}"}`);
  });
}

interface FastifySessionObject extends ShopSession {
  regenerate(keys?: readonly string[]): Promise<void>;
}

async function withFastifySession(app: FastifyInstance, env: StackEnv, counter: Counter): Promise<() => Promise<void>> {
  const client = await anchorRedisClient(env.redisUrl);
  await app.register(require('@fastify/cookie') as FastifyPluginCallback);
  await app.register(require('@fastify/session') as FastifyPluginCallback<Record<string, unknown>>, {
    secret: BENCH_SECRET, store: new RedisStore({ client }), saveUninitialized: false, cookie: { secure: false },
  });
  const data = (req: FastifyRequest): FastifySessionObject => (req as unknown as { session: FastifySessionObject }).session;
  app.get(ROUTES.read, async (req, reply) => { counter.handled++; return json(reply, readBody(data(req))); });
  app.post(ROUTES.write, async (req, reply) => {
    counter.handled++;
    const d = data(req);
    d.n = (d.n ?? 0) + 1;
    return json(reply, readBody(d));
  });
  app.post(ROUTES.login, async (req, reply) => {
    counter.handled++;
    await data(req).regenerate(SESSION_KEYS);
    data(req).user = loginUser(counter.handled);
    return json(reply, `{"csrf":"${DUMMY_CSRF}"}`);
  });
  app.post(ROUTES.race, async (req, reply) => {
    counter.handled++;
    const r = Number(data(req).r ?? 0);
    await raceDelay();
    data(req).r = r + 1;
    return json(reply, readBody(data(req)));
  });
  app.post(ROUTES.seed, async (req, reply) => {
    counter.handled++;
    Object.assign(data(req), seedOf(req));
    return json(reply, `{"csrf":"${DUMMY_CSRF}"}`);
  });
  return async () => { await client.quit(); };
}

async function withTether(app: FastifyInstance, spec: StackSpec, env: StackEnv, counter: Counter): Promise<() => Promise<void>> {
  const tether = await tetherFor(spec.store, env);
  await app.register(tetherPlugin, { tether });
  const s = (req: FastifyRequest) => req.session as unknown as import('tether').Session<ShopSession>;
  app.get(ROUTES.read, async (req, reply) => { counter.handled++; return json(reply, readBody(s(req).data)); });
  app.post(ROUTES.write, async (req, reply) => {
    counter.handled++;
    await s(req).update((d) => { d.n = (d.n ?? 0) + 1; });
    return json(reply, readBody(s(req).data));
  });
  app.post(ROUTES.login, async (req, reply) => {
    counter.handled++;
    s(req).login(loginUser(counter.handled));
    return json(reply, `{"csrf":"${s(req).csrfToken}"}`);
  });
  app.post(ROUTES.race, async (req, reply) => {
    counter.handled++;
    const r = Number(s(req).get('r') ?? 0);
    await raceDelay();
    s(req).set('r', r + 1);
    return json(reply, readBody(s(req).data));
  });
  app.post(ROUTES.seed, { config: { tether: { csrf: false } } }, async (req, reply) => {
    counter.handled++;
    Object.assign(s(req).data, seedOf(req));
    return json(reply, `{"csrf":"${s(req).csrfToken}"}`);
  });
  return () => tether.close();
}

export async function buildFastify(spec: StackSpec, env: StackEnv, counter: Counter): Promise<RunningApp> {
  const app = Fastify({ logger: false });
  let close = async (): Promise<void> => {};
  if (spec.layer === 'none') bare(app, counter);
  else if (spec.layer === 'floor') floor(app, counter);
  else if (spec.layer === 'fastify-session') close = await withFastifySession(app, env, counter);
  else if (spec.layer === 'tether') close = await withTether(app, spec, env, counter);
  else throw new Error(`Fastify has no layer ${spec.layer}`);
  await app.ready();
  return {
    server: app.server,
    close: async () => { await app.close(); await close(); },
  };
}
