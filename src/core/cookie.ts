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

export function setCookieHeader(opts: ResolvedCookie, value: string): string {
  return serialize(opts.name, value, {
    path: opts.path,
    domain: opts.domain,
    sameSite: opts.sameSite,
    secure: opts.secure,
    httpOnly: true,
    maxAge: opts.maxAgeMs === undefined ? undefined : Math.floor(opts.maxAgeMs / 1000),
    // The value is base64url and a dot: nothing to encode.
    encode: (v) => v,
  });
}

/** Expires the cookie in the browser, with the same attributes it was set with. */
export function clearCookieHeader(opts: ResolvedCookie): string {
  return serialize(opts.name, '', {
    path: opts.path,
    domain: opts.domain,
    sameSite: opts.sameSite,
    secure: opts.secure,
    httpOnly: true,
    expires: new Date(0),
    maxAge: 0,
  });
}
