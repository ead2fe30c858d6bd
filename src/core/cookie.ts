/**
 * The session cookie: read from the Cookie header (cookie's parser keeps the first of duplicate
 * names, so a tossed cookie with a longer path cannot shadow ours deterministically), written as
 * Set-Cookie with attributes fixed at construction, never derived from request data.
 * @module
 */
import { parse, serialize } from 'cookie';
import type { ResolvedCookie } from './options.js';

/** The raw value of the session cookie, or undefined. Header size is bounded by the HTTP server. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || !header.includes(name)) return undefined;
  // Only the exact name counts: `SID`, `__HOST-sid`, `sid ` are other cookies.
  return parse(header)[name] || undefined;
}

/**
 * The session cookie's Set-Cookie values for one engine. The attributes never change, so `cookie`
 * serialises them once, here (validating every option); each header is then the signed value followed
 * by that fixed text. Values are signed IDs (base64url, a dot, base64url): nothing to encode.
 */
export class SessionCookie {
  readonly #name: string;
  readonly #attributes: string;
  /** Expires the cookie in the browser, with the same attributes it was set with. */
  readonly clear: string;

  constructor(opts: ResolvedCookie) {
    const attributes = {
      path: opts.path,
      domain: opts.domain,
      sameSite: opts.sameSite,
      secure: opts.secure,
      httpOnly: true,
    } as const;
    const sample = serialize(opts.name, 'v', { ...attributes, maxAge: opts.maxAgeMs === undefined ? undefined : Math.floor(opts.maxAgeMs / 1000) });
    this.#name = opts.name;
    this.#attributes = sample.slice(opts.name.length + 2);
    this.clear = serialize(opts.name, '', { ...attributes, expires: new Date(0), maxAge: 0 });
  }

  /** The Set-Cookie value carrying `value` (a signed ID). */
  set(value: string): string {
    return `${this.#name}=${value}${this.#attributes}`;
  }
}
