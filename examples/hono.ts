import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { createTether } from 'tether';
import { sessions, type TetherEnv } from 'tether/hono';

type Data = { visits: number };
const app = new Hono<TetherEnv<Data>>();
app.use(sessions(createTether<Data>({ secrets: process.env.TETHER_SECRET?.split(',') })));
app.get('/api/session', (c) => c.json({ visits: c.get('session').data.visits ?? 0, csrfToken: c.get('session').csrfToken }));
app.post('/api/visits', async (c) => {
  const s = c.get('session');
  await s.update((d) => { d.visits = (d.visits ?? 0) + 1; });
  return c.json({ visits: s.data.visits, csrfToken: s.csrfToken });
});
serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' });
