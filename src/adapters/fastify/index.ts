/**
 * tether/fastify: a Fastify 5 plugin. `request.session` is the request's Tether session, committed
 * in `onSend`, before the reply goes out; a store failure turns the reply into a clean error.
 * @module
 * @example
 * import Fastify from 'fastify';
 * import { createTether } from 'tether';
 * import { tetherPlugin } from 'tether/fastify';
 * const app = Fastify();
 * await app.register(tetherPlugin, { tether: createTether({ secrets: [process.env.TETHER_SECRET!] }) });
 * app.post('/visit', async (req) => {
 *   await req.session.update((d) => { d.visits = (Number(d.visits) || 0) + 1; });
 *   return { visits: req.session.data.visits };
 * });
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Tether } from '../../core/engine.js';
import type { Session, SessionData } from '../../core/session.js';
import type { RequestView } from '../../core/csrf.js';
import { abandonOnEarlyClose, errorResponse } from '../shared/http.js';

declare module 'fastify' {
  interface FastifyRequest {
    session: Session<SessionData>;
  }
  interface FastifyContextConfig {
    /** Per-route: `csrf: false` skips the CSRF checks; `write` overrides the gate decision. */
    tether?: { csrf?: boolean; write?: boolean };
  }
}

export interface FastifyAdapterOptions {
  tether: Tether<object>;
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean;
}

function viewOf(req: FastifyRequest): RequestView {
  return {
    method: req.method,
    header: (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    },
  };
}

const plugin: FastifyPluginAsync<FastifyAdapterOptions> = async (app: FastifyInstance, opts) => {
  const tether = opts.tether;
  app.decorateRequest('session', null as unknown as Session<SessionData>);

  // Callback-style hooks: a session the engine opens or commits at once (held in memory, nothing to
  // write) costs no promise; the others continue when theirs settles.
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const routeOpts = req.routeOptions.config?.tether;
    const view = viewOf(req);
    const start = (session: Session<object>): void => {
      req.session = session as Session<SessionData>;
      // Instead of an onRequestAbort hook, which would add a listener to every request.
      abandonOnEarlyClose(tether, session, reply.raw);
      if ((routeOpts?.csrf ?? opts.csrf ?? true) !== false) tether.checkRequest(session, view);
    };
    // Answers the request itself; `done` is not called, so the route handler does not run.
    const refuse = (err: unknown): void => {
      if (req.session) tether.abandon(req.session);
      const { status, body } = errorResponse(err);
      if (status === 503) reply.header('retry-after', '1');
      void reply.code(status).header('cache-control', 'no-store').send(body);
    };
    try {
      const opened = tether.openNow(view, routeOpts?.write === undefined ? {} : { write: routeOpts.write });
      if (opened instanceof Promise) {
        opened.then((session) => {
          try {
            start(session);
          } catch (err) {
            refuse(err);
            return;
          }
          done();
        }, refuse);
        return;
      }
      start(opened);
    } catch (err) {
      refuse(err);
      return;
    }
    done();
  });

  app.addHook('onSend', (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void) => {
    const session = req.session;
    if (!session) {
      done(null, payload);
      return;
    }
    const sent = (cookies: string[]): void => {
      if (cookies.length > 0) {
        reply.header('set-cookie', cookies);
        reply.header('cache-control', 'no-store');
      }
      done(null, payload);
    };
    // The reply becomes the error: nothing the handler answered may go out unsaved.
    const failed = (err: unknown): void => {
      const { status, body } = errorResponse(err);
      reply.code(status).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store');
      if (status === 503) reply.header('retry-after', '1');
      reply.removeHeader('content-length');
      done(null, JSON.stringify(body));
    };
    let cookies: string[] | Promise<string[]>;
    try {
      cookies = tether.commitNow(session);
    } catch (err) {
      failed(err);
      return;
    }
    if (cookies instanceof Promise) cookies.then(sent, failed);
    else sent(cookies);
  });

  // A handler that threw wrote nothing: its half-done session changes are dropped, as in every adapter.
  // Runs before the error reply's onSend, so that commit finds the session abandoned. Takes `done`
  // rather than returning a promise: it does no I/O.
  app.addHook('onError', (req: FastifyRequest, _reply: FastifyReply, _err: Error, done: () => void) => {
    if (req.session) tether.abandon(req.session);
    done();
  });
};

// Skip encapsulation so the hooks apply to every route of the parent (what fastify-plugin does).
(plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export const tetherPlugin = plugin;
export default plugin;
