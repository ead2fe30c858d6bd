/**
 * The express-session style `req.session`: data as own properties, methods on the prototype that data
 * can never overwrite, `id` and `cookie` as accessors. It holds no state of its own beyond the data:
 * every method is carried out by the request's controller on the Tether engine.
 * @module
 */
import type { CompatCookie } from './compat-cookie.js';

/** What a CompatSession asks of the request it belongs to (see compat-request.ts). */
export interface SessionController {
  idOf(session: CompatSession): string;
  cookieOf(session: CompatSession): CompatCookie;
  regenerate(session: CompatSession): Promise<void>;
  destroy(session: CompatSession): Promise<void>;
  reload(session: CompatSession): Promise<void>;
  save(session: CompatSession): Promise<void>;
  touch(session: CompatSession): void;
  /** A callback given to one of the methods threw: the request's error handling takes it. */
  callbackThrew(err: unknown): void;
}

export type SessionCallback = (err?: unknown) => void;

/** Names no data key may take: the prototype's members, and keys that reach prototypes. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  'id', 'cookie', 'regenerate', 'destroy', 'reload', 'save', 'touch', 'resetMaxAge', 'toJSON',
  'constructor', '__proto__', 'prototype',
]);

/**
 * Callback style when a callback is given (returns the session, as express-session does), a promise
 * otherwise. A promise nobody awaits must not crash the process: its failure also fails the response
 * (the controller remembers it), so the rejection is marked handled here.
 */
function settle(self: CompatSession, ctl: SessionController, p: Promise<void>, cb: SessionCallback | undefined): CompatSession | Promise<void> {
  if (typeof cb === 'function') {
    // The callback runs outside Express's reach: if it throws, the error goes to Express's error handlers
    // (as express-session passes late store errors to `next`) instead of crashing the process.
    p.then(() => cb(), (err: unknown) => cb(err)).catch((err: unknown) => ctl.callbackThrew(err));
    return self;
  }
  p.catch(() => {});
  return p;
}

export class CompatSession {
  /** Data lives in own properties, as with express-session. */
  [key: string]: unknown;
  readonly #ctl: SessionController;

  /** @internal built by the compat middleware; `data` comes from the store (already a private copy). */
  constructor(ctl: SessionController, data: Record<string, unknown>) {
    this.#ctl = ctl;
    // express-session's `cookie` is an own enumerable property: apps list it (`Object.keys(req.session)`,
    // for…in) and copy it (Passport's keepSessionInfo merges every key into the regenerated session).
    // An accessor, so that it is never stored as data; first, as express-session's is.
    Object.defineProperty(this, 'cookie', { ...COOKIE_ACCESSOR, enumerable: true, configurable: false });
    for (const [k, v] of Object.entries(data)) {
      if (!RESERVED_KEYS.has(k)) this[k] = v;
    }
  }

  /** The session ID (what `req.sessionID` returns). Read-only: assigning it throws, as in express-session. */
  get id(): string {
    return this.#ctl.idOf(this);
  }

  /** This session's cookie settings; assigning copies the settings of the given object. */
  get cookie(): CompatCookie {
    return this.#ctl.cookieOf(this);
  }

  set cookie(value: unknown) {
    this.#ctl.cookieOf(this).assign(value);
  }

  /** A new ID and an empty session; the old session is removed (before the response goes out). */
  regenerate(callback?: SessionCallback): this;
  regenerate(): Promise<void>;
  regenerate(callback?: SessionCallback): CompatSession | Promise<void> {
    return settle(this, this.#ctl, this.#ctl.regenerate(this), callback);
  }

  /** Removes the session; `req.session` becomes undefined at once. */
  destroy(callback?: SessionCallback): this;
  destroy(): Promise<void>;
  destroy(callback?: SessionCallback): CompatSession | Promise<void> {
    return settle(this, this.#ctl, this.#ctl.destroy(this), callback);
  }

  /** Discards this request's changes and loads the session again; `req.session` becomes a new object. */
  reload(callback?: SessionCallback): this;
  reload(): Promise<void>;
  reload(callback?: SessionCallback): CompatSession | Promise<void> {
    return settle(this, this.#ctl, this.#ctl.reload(this), callback);
  }

  /** Writes the session now; the callback (or promise) completes after the store acknowledged it. */
  save(callback?: SessionCallback): this;
  save(): Promise<void>;
  save(callback?: SessionCallback): CompatSession | Promise<void> {
    return settle(this, this.#ctl, this.#ctl.save(this), callback);
  }

  /** Restarts the cookie's lifetime and refreshes the session's expiry at commit. */
  touch(): this {
    this.#ctl.touch(this);
    return this;
  }

  /** Resets `cookie.maxAge` to `cookie.originalMaxAge`. */
  resetMaxAge(): this {
    this.#ctl.cookieOf(this).resetMaxAge();
    return this;
  }

  /** The data plus `cookie`, like JSON.stringify of an express-session session. */
  toJSON(): Record<string, unknown> {
    return { cookie: this.cookie.toJSON(), ...dataOf(this) };
  }
}

// Methods are non-writable: `req.session.save = 1` cannot shadow them (express-session HISTORY 1.x,
// "prevent session prototype methods from being overwritten"). In strict code the assignment throws.
for (const name of ['regenerate', 'destroy', 'reload', 'save', 'touch', 'resetMaxAge', 'toJSON', 'constructor'] as const) {
  const desc = Object.getOwnPropertyDescriptor(CompatSession.prototype, name)!;
  Object.defineProperty(CompatSession.prototype, name, { ...desc, writable: false, enumerable: false, configurable: false });
}

const COOKIE_ACCESSOR = Object.getOwnPropertyDescriptor(CompatSession.prototype, 'cookie')!;

/** The session's data: its own enumerable properties but `cookie`. */
export function dataOf(session: CompatSession): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(session)) if (k !== 'cookie') out[k] = session[k];
  return out;
}
