/**
 * tether/express: the native middleware (`sessions`, `req.tether`, `sessionErrors`) and an
 * express-session drop-in (`session`, default export) with `fromExpressSessionStore` for existing
 * express-session stores.
 * @module
 * @example
 * import express from 'express';
 * import { createTether } from 'tether';
 * import { sessions, sessionOf, sessionErrors } from 'tether/express';
 * const tether = createTether({ secrets: [process.env.TETHER_SECRET!] });
 * const app = express();
 * app.use(sessions(tether));
 * app.post('/visit', async (req, res) => {
 *   const s = sessionOf<{ visits: number }>(req);
 *   await s.update((d) => { d.visits = (d.visits ?? 0) + 1; });
 *   res.json({ visits: s.data.visits });
 * });
 * app.use(sessionErrors()); // after the routes: a failed request writes nothing; TetherErrors answered as JSON
 * @example
 * // An express-session app switches by changing one import:
 * import session from 'tether/express'; // was: import session from 'express-session'
 * app.use(session({ secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }));
 */
import { session } from './compat.js';
import { csrfProtection, csrfTokenOf } from './compat-csrf.js';
import { sessions, sessionOf, optionalSessionOf, sessionErrors } from './native.js';
import { fromExpressSessionStore, ExpressSessionStoreAdapter } from './legacy-store.js';
import { CompatSession } from './compat-session.js';
import { CompatCookie } from './compat-cookie.js';
import { Store } from './compat-store.js';
import { MemoryStore } from '../../stores/memory/index.js';

export { sessions, sessionOf, optionalSessionOf, sessionErrors, csrfCheck } from './native.js';
export type { ExpressAdapterOptions, SessionErrorsOptions, TetherSessionData } from './native.js';
export { session } from './compat.js';
export type { CompatMiddleware } from './compat.js';
export { csrfProtection, csrfTokenOf } from './compat-csrf.js';
export type { CsrfProtectionOptions } from './compat-csrf.js';
export { COMPAT_DEFAULTS } from './compat-options.js';
export type { CompatSessionOptions, CompatTetherOptions } from './compat-options.js';
export { CompatSession } from './compat-session.js';
export { CompatCookie } from './compat-cookie.js';
export type { CompatCookieOptions } from './compat-cookie.js';
export { fromExpressSessionStore, ExpressSessionStoreAdapter, EXPRESS_SESSION_STORE_DEFAULTS } from './legacy-store.js';
export { Store } from './compat-store.js';
export type { StoreConstructor, StoredSession } from './compat-store.js';
export type { ExpressSessionStoreLike, ExpressSessionStoreAdapterOptions } from './legacy-store.js';

// CommonJS apps (require(esm), Node ≥ 20.19): `const session = require('tether/express')` is the
// middleware itself, with the rest attached, as express-session's module is. express-session's own
// members too: stores made by `require('connect-pg-simple')(session)` and the like extend
// `session.Store`, and `new session.MemoryStore()` gives Tether's bounded one. The default export is
// that same object, typed with its members, so a store's typings that take the module (connect-sqlite3's
// `connect(session)`) accept it.
const sessionModule = Object.assign(session, {
  session, sessions, sessionOf, optionalSessionOf, sessionErrors, csrfProtection, csrfTokenOf, fromExpressSessionStore, CompatSession, CompatCookie, ExpressSessionStoreAdapter,
  Store, MemoryStore, Session: CompatSession, Cookie: CompatCookie,
});
export default sessionModule;
export { sessionModule as 'module.exports' };
