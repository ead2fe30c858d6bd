import { createServer } from 'node:http';
import { createTether } from 'tether';
import { withSessions } from 'tether/node';

const tether = createTether<{ visits: number }>({ secrets: process.env.TETHER_SECRET?.split(',') });

const server = createServer(withSessions(tether, async (req, res, session) => {
  res.setHeader('content-type', 'application/json');
  if (req.method === 'POST' && req.url === '/api/visits') {
    await session.update((d) => { d.visits = (d.visits ?? 0) + 1; });
  }
  res.end(JSON.stringify({ visits: session.data.visits ?? 0, csrfToken: session.csrfToken }));
}));
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
