/**
 * express-session's `Store` base class, for the stores that are built on the middleware they are
 * given: `require('connect-pg-simple')(session)`, `require('memorystore')(session)`,
 * session-file-store, express-mysql-session, connect-sqlite3 read `session.Store` and extend it. The
 * drop-in's `session` carries one, so such a store is made as before and then wrapped like any
 * express-session store (`fromExpressSessionStore`).
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Request } from 'express';

/**
 * A session object as a store keeps it: its data and its `cookie`. Each app types its own (express-session's
 * `SessionData`, as the app augments it), and the typings of the stores that extend this class expect that
 * type where they receive one: only `any` is assignable to every such type.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StoredSession = any;

/**
 * What `new Store()` gives: an EventEmitter with express-session's Store methods, `get`, `set` and
 * `destroy` (and optionally `all`, `length`, `clear`, `touch`) to be given by the store that extends it,
 * as in express-session, where they are abstract.
 */
export interface Store extends EventEmitter {
  /** The request's session regenerated: `req.session.regenerate(callback)`. */
  regenerate(req: Request, callback: (err?: unknown) => void): void;
  /** The session object stored under `sid` (undefined when there is none), as `createSession` gives it. */
  load(sid: string, callback: (err: unknown, session?: StoredSession) => void): void;
  /**
   * The stored session object with its `cookie.expires` a Date again. Unlike express-session's, it has no
   * methods and does not become `req.session`: the drop-in's `req.session` is the middleware's own.
   */
  createSession(req: Request | { sessionID: string; sessionStore: Store }, session: StoredSession): StoredSession;
  get(sid: string, callback: (err: unknown, session?: StoredSession) => void): void;
  set(sid: string, session: StoredSession, callback?: (err?: unknown) => void): void;
  destroy(sid: string, callback?: (err?: unknown) => void): void;
  all?(callback: (err: unknown, sessions?: StoredSession) => void): void;
  length?(callback: (err: unknown, length?: number) => void): void;
  clear?(callback?: (err?: unknown) => void): void;
  touch?(sid: string, session: StoredSession, callback?: () => void): void;
}

/**
 * The constructor: abstract, as express-session's is (the store that extends it gives `get`, `set`,
 * `destroy`), with EventEmitter's static members, which express-session's inherits.
 */
export type StoreConstructor = (abstract new (options?: unknown) => Store) & Omit<typeof EventEmitter, 'prototype'> & { prototype: Store };

/**
 * A constructor function rather than a class: util.inherits-style stores call it as
 * `Store.call(this, options)`, which a class constructor refuses.
 */
export const Store = function Store(this: EventEmitter): void {
  EventEmitter.call(this);
} as unknown as StoreConstructor;

Object.setPrototypeOf(Store.prototype, EventEmitter.prototype);
Object.setPrototypeOf(Store, EventEmitter);

const methods: Pick<Store, 'regenerate' | 'load' | 'createSession'> = {
  regenerate(req, callback) {
    const session = (req as { session?: { regenerate?: unknown } }).session;
    if (typeof session?.regenerate !== 'function') {
      callback(new Error('store.regenerate(req): the request has no session to regenerate (the session() middleware did not run for it)'));
      return;
    }
    (session.regenerate as (cb: (err?: unknown) => void) => unknown).call(session, callback);
  },
  load(this: Store, sid, callback) {
    this.get(sid, (err, session) => {
      if (err) return callback(err);
      if (typeof session !== 'object' || session === null) return callback(undefined);
      callback(undefined, this.createSession({ sessionID: sid, sessionStore: this }, session));
    });
  },
  createSession(_req, session: unknown): unknown {
    const cookie = (session as { cookie?: unknown } | null)?.cookie;
    if (typeof cookie === 'object' && cookie !== null && typeof (cookie as { expires?: unknown }).expires === 'string') {
      return { ...(session as object), cookie: { ...cookie, expires: new Date((cookie as { expires: string }).expires) } };
    }
    return session;
  },
};

for (const [name, value] of Object.entries(methods)) {
  // Non-enumerable, as a class's methods are: `for…in` over a store lists its own settings only.
  Object.defineProperty(Store.prototype, name, { value, writable: true, configurable: true, enumerable: false });
}
