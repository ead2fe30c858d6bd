/**
 * express-session's `Store` base class, for the stores that are built on the middleware they are
 * given: `require('connect-pg-simple')(session)`, `require('memorystore')(session)`,
 * session-file-store, express-mysql-session, connect-sqlite3 read `session.Store` and extend it. The
 * drop-in's `session` carries one, so such a store is made as before and then wrapped like any
 * express-session store (`fromExpressSessionStore`).
 * @module
 */
import { EventEmitter } from 'node:events';

/** What `new Store()` gives: an EventEmitter, as express-session's Store is. */
export type Store = EventEmitter;

/**
 * A constructor function rather than a class: util.inherits-style stores call it as
 * `Store.call(this, options)`, which a class constructor refuses.
 */
export const Store = function Store(this: EventEmitter): void {
  EventEmitter.call(this);
} as unknown as { new (options?: unknown): Store; prototype: Store };

Object.setPrototypeOf(Store.prototype, EventEmitter.prototype);
Object.setPrototypeOf(Store, EventEmitter);
