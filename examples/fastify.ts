import Fastify from 'fastify';
import { createTether } from 'tether';
import { tetherPlugin } from 'tether/fastify';

const app = Fastify();
await app.register(tetherPlugin, { tether: createTether({ secrets: process.env.TETHER_SECRET?.split(',') }) });
app.get('/api/session', async (req) => ({ visits: req.session.data.visits ?? 0, csrfToken: req.session.csrfToken }));
app.post('/api/visits', async (req) => {
  await req.session.update((d) => { d.visits = Number(d.visits ?? 0) + 1; });
  return { visits: req.session.data.visits, csrfToken: req.session.csrfToken };
});
await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
