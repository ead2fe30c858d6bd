import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { createTether } from 'tether';
import { withSessions, openSocket, refuseUpgrade } from 'tether/node';

type Data = { messages: number };
const tether = createTether<Data>({ secrets: process.env.TETHER_SECRET?.split(',') });

// HTTP: sign in (a real app checks a password here), sign out, and the CSRF token.
const server = createServer(withSessions(tether, async (req, res, session) => {
  const body = await new Promise<string>((done) => {
    let text = '';
    req.setEncoding('utf8').on('data', (c: string) => (text = (text + c).slice(0, 1024))).on('end', () => done(text));
  });
  const { user } = JSON.parse(body || '{}') as { user?: unknown };
  if (req.method === 'POST' && req.url === '/login') session.login(typeof user === 'string' && user !== '' ? user.slice(0, 64) : 'guest');
  if (req.method === 'POST' && req.url === '/logout') session.destroy();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ user: session.destroyed ? null : session.userId, csrfToken: session.destroyed ? null : session.csrfToken }));
}));

// WebSocket: only from this app's pages (the Origin), only when signed in, closed when the session ends.
const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/live') return refuseUpgrade(socket, 404);
  openSocket(tether, req).then((session) => {
    if (session.userId === null) return refuseUpgrade(socket, 401);
    wss.handleUpgrade(req, socket, head, (ws) => {
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
  }).catch((err: unknown) => refuseUpgrade(socket, err)); // 403 ORIGIN_MISMATCH, 503 STORE_UNAVAILABLE
});
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
