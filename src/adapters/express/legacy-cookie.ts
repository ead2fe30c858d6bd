/**
 * Reads the cookie express-session set (`s:<sid>.<signature>`, signed by cookie-signature with the
 * app's `secret`), so a session it stored can be migrated to Tether on the user's next visit.
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readCookie } from '../../core/cookie.js';

/** express-session's default cookie name. */
export const LEGACY_COOKIE_NAME = 'connect.sid';

/**
 * cookie-signature's unsign: the value before the last dot, if the rest is base64(HMAC-SHA256) of it
 * without padding under one of `secrets`. Every secret is tried, so timing does not tell which matched.
 */
export function unsignLegacy(signed: string, secrets: readonly Buffer[]): string | null {
  const dot = signed.lastIndexOf('.');
  if (dot <= 0) return null;
  const value = signed.slice(0, dot);
  const given = Buffer.from(signed.slice(dot + 1));
  let ok = false;
  for (const secret of secrets) {
    const expected = Buffer.from(createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, ''));
    if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
  }
  return ok ? value : null;
}

/**
 * The value of the cookie `name` as express-session wrote it: URI-encoded (`s%3A…`), so decoded the
 * way its parser decodes (a value that does not decode is kept as it is).
 */
function legacyValue(cookieHeader: string | undefined, name: string): string | undefined {
  const raw = readCookie(cookieHeader, name);
  if (raw === undefined || !raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The express-session ID a Cookie header carries under `name`, if its signature holds. */
export function legacySessionId(cookieHeader: string | undefined, name: string, secrets: readonly Buffer[]): string | null {
  if (secrets.length === 0) return null;
  const raw = legacyValue(cookieHeader, name);
  if (!raw || !raw.startsWith('s:')) return null;
  return unsignLegacy(raw.slice(2), secrets);
}

/** True when a raw cookie value has express-session's signed form (so it is not one of ours). */
export function isLegacyValue(cookieHeader: string | undefined, name: string): boolean {
  return legacyValue(cookieHeader, name)?.startsWith('s:') ?? false;
}

/** The Cookie header without the cookie `name` (when Tether and express-session share a name). */
export function withoutCookie(cookieHeader: string | undefined, name: string): string | undefined {
  if (!cookieHeader) return cookieHeader;
  const kept = cookieHeader.split(';').filter((part) => part.split('=')[0]!.trim() !== name);
  return kept.length ? kept.join(';') : undefined;
}
