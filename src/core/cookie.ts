/**
 * The session cookie: read from the Cookie header (the first pair with its exact name, so a tossed
 * cookie with a longer path cannot shadow ours deterministically), written as Set-Cookie with
 * attributes fixed at construction, never derived from request data.
 * @module
 */
import { serialize } from 'cookie';
import type { ResolvedCookie } from './options.js';

const EQUALS = 0x3d;
const isBlank = (c: number): boolean => c === 0x20 || c === 0x09;

/**
 * The raw value of the first pair in a Cookie header whose name is exactly `name`, trimmed of spaces
 * and tabs, or undefined when there is none or it is empty. Header size is bounded by the HTTP server.
 *
 * `cookie`'s parser is not used here because it trims the names it reads, so `sid =x` or `sid\t=x`
 * would count as `sid`; RFC 6265 §4.2.1 names carry no whitespace, and only the exact name is ours
 * (`SID`, `__HOST-sid`, `sid ` are other cookies). Values are not decoded: the caller checks them.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || !header.includes(name)) return undefined;
  const len = header.length;
  let at = 0;
  while (at < len) {
    let end = header.indexOf(';', at);
    if (end < 0) end = len;
    while (at < end && isBlank(header.charCodeAt(at))) at++;
    if (header.startsWith(name, at) && header.charCodeAt(at + name.length) === EQUALS) {
      let from = at + name.length + 1;
      let to = end;
      while (from < to && isBlank(header.charCodeAt(from))) from++;
      while (to > from && isBlank(header.charCodeAt(to - 1))) to--;
      return from < to ? header.slice(from, to) : undefined;
    }
    at = end + 1;
  }
  return undefined;
}

/**
 * The session cookie's Set-Cookie values for one engine. The attributes never change, so `cookie`
 * serialises them once, here (validating every option); each header is then the signed value followed
 * by that fixed text. Values are signed IDs (base64url, a dot, base64url): nothing to encode.
 */
export class SessionCookie {
  readonly #name: string;
  readonly #attributes: string;
  /** The attributes without a Max-Age, for a cookie given its own. */
  readonly #lasting: string;
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
    this.#lasting = serialize(opts.name, 'v', attributes).slice(opts.name.length + 2);
    this.clear = serialize(opts.name, '', { ...attributes, expires: new Date(0), maxAge: 0 });
  }

  /** The Set-Cookie value carrying `value` (a signed ID). */
  set(value: string): string {
    return `${this.#name}=${value}${this.#attributes}`;
  }

  /** The Set-Cookie value carrying `value` for `maxAgeMs` (a persistent cookie; at least a second). */
  lasting(value: string, maxAgeMs: number): string {
    return `${this.#name}=${value}; Max-Age=${Math.max(1, Math.floor(maxAgeMs / 1000))}${this.#lasting}`;
  }
}
