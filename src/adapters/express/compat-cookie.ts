/**
 * `req.session.cookie` as express-session documents it (its session/cookie.js): `maxAge`, `expires`,
 * `originalMaxAge`, `secure`, `httpOnly`, `sameSite`, `path`, `domain`, per session, serialised by us.
 * @module
 */
import { serialize } from 'cookie';
import type { Clock } from '../../core/store.js';

/** express-session's `cookie` option (the shape @types/express-session declares). */
export interface CompatCookieOptions {
  /** Lifetime in ms: makes the cookie persistent (Expires/Max-Age). @default none (a browser-session cookie) */
  maxAge?: number | null | undefined;
  /** @deprecated as in express-session: prefer `maxAge`. */
  expires?: Date | null | false | undefined;
  /** @default true */
  httpOnly?: boolean | undefined;
  /** @default '/' */
  path?: string | undefined;
  domain?: string | undefined;
  /** `'auto'`: Secure exactly when the request is HTTPS (see the `proxy` option). @default false, 'auto' in production */
  secure?: boolean | 'auto' | undefined;
  /** `true` = Strict, `false` = no attribute, `'auto'` = None on HTTPS else Lax. @default 'lax' (express-session: none) */
  sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto' | undefined;
  partitioned?: boolean | undefined;
  priority?: 'low' | 'medium' | 'high' | undefined;
  /** Accepted and ignored: the cookie is always signed. */
  signed?: boolean | undefined;
  /** Accepted and ignored: the value is base64url and needs no encoding. */
  encode?: ((val: string) => string) | undefined;
}

/** The per-session settings that differ from the configured ones, kept in the session under `cookie`. */
export interface CookieOverrides {
  originalMaxAge?: number | null | false;
  httpOnly?: boolean;
  path?: string;
  domain?: string | null;
  secure?: boolean;
  sameSite?: boolean | 'lax' | 'strict' | 'none';
  partitioned?: boolean;
  priority?: 'low' | 'medium' | 'high';
}

const OVERRIDABLE = ['originalMaxAge', 'httpOnly', 'path', 'domain', 'secure', 'sameSite', 'partitioned', 'priority'] as const;

export class CompatCookie {
  path = '/';
  httpOnly = true;
  domain: string | undefined = undefined;
  secure: boolean | undefined = undefined;
  sameSite: boolean | 'lax' | 'strict' | 'none' | undefined = undefined;
  partitioned: boolean | undefined = undefined;
  priority: 'low' | 'medium' | 'high' | undefined = undefined;
  /**
   * The lifetime the cookie was given (ms), or null for a browser-session cookie; `false` when it was made
   * one with `expires = false` (or `maxAge = false`), which express-session keeps and reads back as `false`.
   */
  originalMaxAge: number | null | false = null;
  readonly #clock: Clock;
  /** The expiry; null or false (as it was set) for a browser-session cookie. */
  #expires: Date | null | false = null;

  /** @internal built by the compat middleware */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The expiry, or null for a browser-session cookie; `false` when set so, as express-session reads it back. */
  get expires(): Date | null | false {
    return this.#expires;
  }

  /** As express-session: setting `expires` also sets `originalMaxAge` to the time left (`false` for `false`). */
  set expires(date: Date | null | false | undefined) {
    if (date !== null && date !== undefined && date !== false && !(date instanceof Date)) {
      throw new TypeError('cookie.expires must be a Date, null or false');
    }
    this.#expires = date instanceof Date || date === false ? date : null;
    this.originalMaxAge = this.maxAge;
  }

  /** Milliseconds left, or null for a browser-session cookie (`false` after `expires = false`, as in express-session). */
  get maxAge(): number | null | false {
    return this.#expires instanceof Date ? this.#expires.valueOf() - this.#clock.now() : this.#expires;
  }

  /** As express-session also takes: a Date (deprecated there) is an expiry, `false` a browser-session cookie. */
  set maxAge(ms: number | Date | false | null | undefined) {
    if (ms instanceof Date || ms === false) {
      this.expires = ms;
      return;
    }
    if (ms !== null && ms !== undefined && (typeof ms !== 'number' || !Number.isFinite(ms))) {
      throw new TypeError('cookie.maxAge must be a number of milliseconds or null');
    }
    // originalMaxAge is `ms` itself, not re-measured against a clock that may have moved meanwhile.
    this.#expires = typeof ms === 'number' ? new Date(this.#clock.now() + ms) : null;
    this.originalMaxAge = typeof ms === 'number' ? ms : null;
  }

  /** What express-session's Cookie#data returns. */
  get data(): Record<string, unknown> {
    return {
      originalMaxAge: this.originalMaxAge, partitioned: this.partitioned, priority: this.priority, expires: this.#expires,
      secure: this.secure, httpOnly: this.httpOnly, domain: this.domain, path: this.path, sameSite: this.sameSite,
    };
  }

  toJSON(): Record<string, unknown> {
    return this.data;
  }

  /** A Set-Cookie value with this cookie's attributes (the value must already be cookie-safe). */
  serialize(name: string, value: string): string {
    const maxAge = this.maxAge;
    const expires = this.#expires;
    return serialize(name, value, {
      path: this.path,
      domain: this.domain,
      httpOnly: this.httpOnly,
      secure: this.secure === true,
      sameSite: this.sameSite === undefined ? undefined : this.sameSite,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: expires instanceof Date ? expires : undefined,
      maxAge: typeof maxAge === 'number' ? Math.max(0, Math.floor(maxAge / 1000)) : undefined,
      encode: (v) => v,
    });
  }

  /** Expires the cookie in the browser with the attributes it was set with. */
  serializeClear(name: string): string {
    return serialize(name, '', {
      path: this.path, domain: this.domain, httpOnly: this.httpOnly, secure: this.secure === true,
      sameSite: this.sameSite === undefined ? undefined : this.sameSite, partitioned: this.partitioned,
      expires: new Date(0), maxAge: 0,
    });
  }

  /** Restarts the lifetime from now: express-session's Session#resetMaxAge. */
  resetMaxAge(): void {
    // With no lifetime of its own it is a browser-session cookie, whatever expiry the defaults it came from had.
    this.maxAge = this.originalMaxAge;
  }

  /** The fields that differ from `defaults`, for storage with the session. */
  overridesAgainst(defaults: CompatCookie): CookieOverrides {
    const out: Record<string, unknown> = {};
    for (const k of OVERRIDABLE) {
      const mine = this[k] ?? null;
      if (mine !== (defaults[k] ?? null)) out[k] = mine;
    }
    return out;
  }

  /** Applies stored overrides (from the session's `cookie` entry); unknown or mistyped fields are ignored. */
  applyOverrides(o: unknown): void {
    if (typeof o !== 'object' || o === null) return;
    const v = o as Record<string, unknown>;
    if (typeof v.originalMaxAge === 'number' || v.originalMaxAge === null || v.originalMaxAge === false) this.originalMaxAge = v.originalMaxAge;
    if (typeof v.httpOnly === 'boolean') this.httpOnly = v.httpOnly;
    if (typeof v.path === 'string') this.path = v.path;
    if (typeof v.domain === 'string') this.domain = v.domain;
    if (v.domain === null) this.domain = undefined;
    if (typeof v.secure === 'boolean') this.secure = v.secure;
    if (typeof v.sameSite === 'boolean' || v.sameSite === 'lax' || v.sameSite === 'strict' || v.sameSite === 'none') this.sameSite = v.sameSite;
    if (typeof v.partitioned === 'boolean') this.partitioned = v.partitioned;
    if (v.priority === 'low' || v.priority === 'medium' || v.priority === 'high') this.priority = v.priority;
  }

  /** Copies the settings of another cookie object (assigning `req.session.cookie = …`). */
  assign(from: unknown): void {
    if (typeof from !== 'object' || from === null) throw new TypeError('req.session.cookie must be an object');
    // Its own cookie given back (a session copied with its keys and assigned again) changes nothing,
    // as assigning a property its own value does in express-session.
    if (from === this) return;
    const f = from as Record<string, unknown>;
    const original = f.originalMaxAge;
    this.applyOverrides(f);
    if (f.expires instanceof Date || f.expires === null || f.expires === false) this.expires = f.expires;
    else if (typeof f.maxAge === 'number') this.maxAge = f.maxAge;
    if (typeof original === 'number' || original === null || original === false) this.originalMaxAge = original;
  }

  /** A copy carrying the same settings and expiry. */
  clone(): CompatCookie {
    const c = new CompatCookie(this.#clock);
    for (const k of OVERRIDABLE) (c as unknown as Record<string, unknown>)[k] = this[k];
    c.#expires = this.#expires;
    return c;
  }
}
