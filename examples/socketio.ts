import { createServer } from 'node:http';
import { Server } from 'socket.io';
import type { DefaultEventsMap } from 'socket.io';
import { createTether, isTetherError } from 'tether';
import type { SocketSession } from 'tether';
import { withSessions, openSocket } from 'tether/node';

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

// socket.io: a connection only from this app's pages (the Origin), only when signed in; the session's
// end disconnects it. A refusal reaches the client as connect_error, its code in `data`.
const io = new Server<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, { session: SocketSession<Data> }>(server, { maxHttpBufferSize: 4096 });
const refused = (code: string, message: string) => Object.assign(new Error(message), { data: { code } });
io.use((socket, next) => {
  openSocket(tether, socket.request).then((session) => {
    if (session.userId === null) {
      session.close();
      return next(refused('UNAUTHORIZED', 'sign in first'));
    }
    socket.data.session = session;
    next();
  }, (err: unknown) => {
    next(isTetherError(err) ? refused(err.code, err.message) : refused('INTERNAL_ERROR', 'internal server error')); // ORIGIN_MISMATCH, STORE_UNAVAILABLE
  });
});
io.on('connection', (socket) => {
  const session = socket.data.session;
  socket.emit('hello', { user: session.userId, messages: session.get('messages') ?? 0 });
  // A logout, a login elsewhere in the browser, a timeout: what this connection may see ends with the session.
  session.onEnd((reason) => {
    socket.emit('ended', reason);
    socket.disconnect(true);
  });
  socket.on('message', async (_text: unknown, ack?: (reply: unknown) => void) => {
    try {
      // A message is activity (it keeps the session alive) and here also a change, stored as a request's.
      await session.update((d) => { d.messages = (d.messages ?? 0) + 1; });
      ack?.({ messages: session.get('messages') });
    } catch {
      socket.disconnect(true);
    }
  });
  socket.on('disconnect', () => session.close());
});
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
