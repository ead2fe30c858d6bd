import express from 'express';
import { createTether } from 'tether';
import { sessions, sessionOf, sessionErrors } from 'tether/express';

type Data = { visits: number };
const tether = createTether<Data>({ secrets: process.env.TETHER_SECRET?.split(',') });

const app = express();
app.use(sessions(tether));
app.get('/api/session', (req, res) => {
  const s = sessionOf<Data>(req);
  res.json({ visits: s.data.visits ?? 0, csrfToken: s.csrfToken });
});
app.post('/api/visits', async (req, res) => {
  const s = sessionOf<Data>(req);
  await s.update((d) => { d.visits = (d.visits ?? 0) + 1; });
  res.json({ visits: s.data.visits, csrfToken: s.csrfToken });
});
app.use(sessionErrors());
app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
