import Fastify from 'fastify';
import type { FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import { createTether } from 'tether';
import type { Session, SocketSession } from 'tether';
import { tetherPlugin, tetherErrorHandler } from 'tether/fastify';
import { openSocket } from 'tether/node';

type Data = { messages: number };
const tether = createTether<Data>({ secrets: process.env.TETHER_SECRET?.split(',') });
const app = Fastify({ bodyLimit: 1024 });
await app.register(websocket, { options: { maxPayload: 4096 } });
await app.register(tetherPlugin, { tether });
app.setErrorHandler(tetherErrorHandler);

// HTTP: sign in (a real app checks a password here), sign out, and the CSRF token.
const me = (s: Session<Data>) => ({ user: s.destroyed ? null : s.userId, csrfToken: s.destroyed ? null : s.csrfToken });
app.get('/', async (req) => me(req.session));
app.post<{ Body: { user?: unknown } }>('/login', async (req) => {
  req.session.login(typeof req.body?.user === 'string' && req.body.user !== '' ? req.body.user.slice(0, 64) : 'guest');
  return me(req.session);
});
app.post('/logout', async (req) => {
  req.session.destroy();
  return me(req.session);
});

// WebSocket: only from this app's pages (the Origin), only when signed in, closed when the session ends.
const sockets = new WeakMap<FastifyRequest, SocketSession<Data>>();
app.get('/live', {
  websocket: true,
  // Runs before the upgrade, while a refusal is still an HTTP answer: 403 ORIGIN_MISMATCH and
  // 503 STORE_UNAVAILABLE are thrown (tetherErrorHandler answers them), 401 sent here.
  preValidation: async (req, reply) => {
    const live = await openSocket(tether, req.raw);
    if (live.userId === null) {
      live.close();
      return reply.code(401).send({ error: { code: 'UNAUTHORIZED', message: 'Unauthorized' } });
    }
    sockets.set(req, live);
  },
}, (ws, req) => {
  const session = sockets.get(req)!;
  ws.send(JSON.stringify({ type: 'hello', user: session.userId, messages: session.get('messages') ?? 0 }));
  // A logout, a login elsewhere in the browser, a timeout: what this socket may see ends with the session.
  session.onEnd((reason) => ws.close(4001, `session ${reason}`));
  // A message is activity (it keeps the session alive) and here also a change, stored as a request's.
  const count = async (): Promise<void> => {
    try {
      await session.update((d) => { d.messages = (d.messages ?? 0) + 1; });
      ws.send(JSON.stringify({ type: 'count', messages: session.get('messages') }));
    } catch {
      ws.close(1011, 'session unavailable');
    }
  };
  ws.on('message', () => void count());
  ws.on('close', () => session.close());
});
await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
