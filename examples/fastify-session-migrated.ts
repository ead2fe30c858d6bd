import Fastify from 'fastify';
import { createTether } from 'tether';
import { tetherPlugin } from 'tether/fastify';

const app = Fastify();
// Was: app.register(fastifyCookie); app.register(fastifySession, { secret, cookie: { maxAge: 1800000 }, saveUninitialized: false })
await app.register(tetherPlugin, {
  tether: createTether({ secrets: process.env.TETHER_SECRET?.split(','), idleTimeoutMs: 30 * 60_000 }),
});

const cartOf = (items: unknown): string[] => (Array.isArray(items) ? items.map(String) : []);

app.get('/me', async (req) => ({
  user: req.session.userId, // was: request.session.get('user')
  cart: cartOf(req.session.get('cart')),
  csrfToken: req.session.csrfToken, // send it back as X-CSRF-Token on every POST
}));

app.post('/cart', async (req) => {
  const { item } = req.body as { item: string };
  // Was: request.session.set('cart', [...cart, item]), which loses adds made by concurrent requests.
  await req.session.update((d) => { d.cart = [...cartOf(d.cart), item]; });
  return { cart: cartOf(req.session.get('cart')) };
});

app.post('/login', async (req) => {
  const { user } = req.body as { user: string };
  // Was: await request.session.regenerate(['cart']); request.session.set('user', user)
  req.session.login(user, { keep: ['cart'] });
  return { user, csrfToken: req.session.csrfToken };
});

app.post('/logout', async (req) => {
  req.session.destroy(); // was: await request.session.destroy()
  return { user: null };
});

await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
