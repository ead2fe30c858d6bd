/** The session summary (cart, preferences, CSRF token) and preferences. @module */
import type { FastifyInstance } from 'fastify';
import { CURRENCIES, THEMES, preferencesOf } from '../lib/cart.js';
import type { Preferences } from '../lib/cart.js';
import { validationFailed } from '../lib/errors.js';
import { objectBody, onlyKeys } from '../lib/validate.js';
import { sessionOf, sessionView } from '../context.js';
import type { ShopContext, ShopUserContext } from '../context.js';

function parsePreferences(body: unknown): Partial<Preferences> {
  const b = objectBody(body);
  onlyKeys(b, ['theme', 'currency']);
  const out: Partial<Preferences> = {};
  if (b.theme !== undefined) {
    if (!(THEMES as readonly unknown[]).includes(b.theme)) throw validationFailed(`theme must be one of ${THEMES.join(', ')}`);
    out.theme = b.theme as Preferences['theme'];
  }
  if (b.currency !== undefined) {
    if (!(CURRENCIES as readonly unknown[]).includes(b.currency)) throw validationFailed(`currency must be one of ${CURRENCIES.join(', ')}`);
    out.currency = b.currency as Preferences['currency'];
  }
  if (Object.keys(out).length === 0) throw validationFailed('give theme, currency or both');
  return out;
}

export function sessionRoutes(app: FastifyInstance, ctx: ShopContext): void {
  // The one route that creates sessions (it hands out the CSRF token), hence rate-limited per address.
  app.get('/api/session', { config: { shop: { createsSession: true } } }, async (req) => sessionView(ctx, sessionOf(req)));

  // How long the session has left, asked by a page about to warn of the idle timeout: not the user's
  // activity, so asking moves no deadline (the answer's X-Session-Expires-In says it too).
  app.get('/api/session/deadline', async (req) => {
    const session = sessionOf(req);
    session.touch(false);
    const at = session.expiresAt;
    return { authenticated: session.userId !== null, expiresIn: at === null ? null : Math.max(0, at - ctx.tether.options.clock.now()) };
  });

  // "Stay signed in": the user's answer to that warning, which moves the idle deadline now.
  app.post('/api/session/keepalive', async (req, reply) => {
    sessionOf(req).touch();
    return reply.code(204).send();
  });

  app.put('/api/preferences', async (req) => {
    const change = parsePreferences(req.body);
    const session = sessionOf(req);
    let preferences: Preferences;
    if (session.userId !== null) {
      const uc = await ctx.tether.users.update<ShopUserContext>(session.userId, (c) => {
        c.preferences = { ...preferencesOf(c.preferences), ...change };
      });
      preferences = preferencesOf(uc.preferences);
    } else {
      await session.update((d) => {
        d.preferences = { ...preferencesOf(d.preferences), ...change };
      });
      preferences = preferencesOf(session.data.preferences);
    }
    return { preferences };
  });
}
