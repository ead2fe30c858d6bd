/**
 * The Set-Cookie values one request will send: the engine's, re-serialised with the session's own
 * cookie settings (express-session keeps them per session), at most one per cookie name, and none once
 * the response head is out.
 * @module
 */
import type { Request } from 'express';
import type { CompatCookie } from './compat-cookie.js';
import { isSecureRequest } from './compat-options.js';
import type { ResolvedCompat } from './compat-options.js';

export class SetCookieQueue {
  readonly #cfg: ResolvedCompat;
  readonly #req: Request;
  #entries: Array<[name: string, header: string]> = [];
  #closed = false;

  constructor(cfg: ResolvedCompat, req: Request) {
    this.#cfg = cfg;
    this.#req = req;
  }

  /** False when the cookie is Secure and the request is plain HTTP: express-session then sets no cookie. */
  deliverable(cookie: CompatCookie): boolean {
    return !(cookie.secure === true && !isSecureRequest(this.#req, this.#cfg.proxy));
  }

  /** True when a value for `name` is queued. */
  has(name: string): boolean {
    return this.#entries.some(([n]) => n === name);
  }

  /** Takes the engine's Set-Cookie values for the session cookie and re-serialises them with `cookie`. */
  pushEngine(headers: readonly string[], cookie: CompatCookie): void {
    const name = this.#cfg.name;
    for (const h of headers) {
      const eq = h.indexOf('=');
      const semi = h.indexOf(';');
      if (h.slice(0, eq) !== name || !this.deliverable(cookie)) continue;
      const value = h.slice(eq + 1, semi === -1 ? undefined : semi);
      if (value === '') {
        this.add(name, cookie.serializeClear(name));
        continue;
      }
      // express-session touches the cookie before it goes out: a persistent one counts from now.
      cookie.resetMaxAge();
      this.#checkLifetime(cookie);
      this.add(name, cookie.serialize(name, value));
    }
  }

  /** Queues `header` for `name`, replacing an earlier one (the browser would keep the last anyway). */
  add(name: string, header: string): void {
    if (this.#closed) {
      this.#cfg.warn('TETHER_COMPAT_LATE_COOKIE', 'a session cookie had to change after the response head was sent (a session created, regenerated or destroyed while streaming); the browser keeps its old cookie. Change the session before writing the response.');
      return;
    }
    this.#entries = this.#entries.filter(([n]) => n !== name);
    this.#entries.push([name, header]);
  }

  /** The values to send with the head; nothing can be added afterwards. */
  close(): string[] {
    this.#closed = true;
    return this.#entries.map(([, v]) => v);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #checkLifetime(cookie: CompatCookie): void {
    const lifetime = cookie.originalMaxAge;
    // A lifetime past the idle timeout makes the session a remembered one (compat-request.ts): only one
    // past a remembered session's idle timeout outlives its session.
    const idle = this.#cfg.tether.options.remember.idleTimeoutMs;
    if (typeof lifetime === 'number' && lifetime > idle) {
      this.#cfg.warn('TETHER_COMPAT_COOKIE_OUTLIVES_SESSION', `a session cookie was given a lifetime of ${Math.round(lifetime / 1000)} s, longer than a remembered session's idle timeout of ${Math.round(idle / 1000)} s: the session ends before its cookie. Set tether.remember.idleTimeoutMs (and absoluteTimeoutMs) to the longest lifetime you hand out.`);
    }
    if (this.#cfg.production && cookie.secure !== true) {
      this.#cfg.warn('TETHER_COMPAT_INSECURE_COOKIE', 'a session cookie went out without Secure in production: the request did not look like HTTPS. Behind a TLS proxy set app.set(\'trust proxy\', …) or the proxy option, or cookie.secure: true.');
    }
  }
}
