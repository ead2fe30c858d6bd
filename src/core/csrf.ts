/**
 * CSRF defence bound to the session (OWASP CSRF cheat sheet): Fetch Metadata, Origin/Referer, the
 * CORS-simple content types, and a per-session synchronizer token that never travels in a cookie.
 * @module
 */
import { CsrfTokenInvalidError, OriginMismatchError, UnsupportedMediaTypeError } from './errors.js';
import type { ResolvedCsrf } from './options.js';
import { safeEqual } from './signer.js';

/** The adapter's view of a request: method and (lower-case) header lookup. */
export interface RequestView {
  method: string;
  header(name: string): string | undefined;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export function isSafeMethod(method: string): boolean {
  return SAFE.has(method);
}

function originOf(value: string): string | null {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

function allowed(opts: ResolvedCsrf, origin: string, req: RequestView): boolean {
  if (opts.origins) return opts.origins.includes(origin);
  // Default: the host the request was addressed to. The scheme is not compared: TLS usually ends at a
  // proxy, so the server cannot tell it reliably without trusting forwarded headers.
  const host = req.header('host');
  if (host === undefined) return false;
  const url = new URL(origin);
  if (url.host === host.toLowerCase()) return true;
  // A Host that names the scheme's default port (app:80) names the origin a browser writes without it.
  return sameHost(url.protocol, url.host, host);
}

/** A Host header's form: a name or address and maybe a port, nothing a URL would read as more. */
const HOST_FORM = /^[^/?#@\\\s]+$/;

/** Whether `host` (a Host header) is `originHost` once read as a URL of `protocol`, which drops a default port. */
function sameHost(protocol: string, originHost: string, host: string): boolean {
  if (!HOST_FORM.test(host)) return false;
  try {
    return new URL(`${protocol}//${host}`).host === originHost;
  } catch {
    return false;
  }
}

export function checkCsrf(opts: ResolvedCsrf, token: string | undefined, req: RequestView): void {
  if (SAFE.has(req.method)) return;
  if (req.header('sec-fetch-site') === 'cross-site') throw new OriginMismatchError('cross-site request refused (Sec-Fetch-Site)');
  const originHeader = req.header('origin');
  if (originHeader !== undefined) {
    const origin = originOf(originHeader);
    if (origin === null || !allowed(opts, origin, req)) throw new OriginMismatchError();
  } else {
    const referer = req.header('referer');
    if (referer !== undefined) {
      const origin = originOf(referer);
      if (origin === null || !allowed(opts, origin, req)) throw new OriginMismatchError('the Referer names another origin');
    } else if (opts.requireOrigin) {
      throw new OriginMismatchError('an unsafe request must carry Origin or Referer');
    }
  }
  if (opts.jsonOnly && hasBody(req)) {
    const type = req.header('content-type');
    if (type === undefined || !JSON_TYPE.test(type)) throw new UnsupportedMediaTypeError();
  }
  const given = req.header(opts.header);
  if (given === undefined || token === undefined || !safeEqual(given, token)) throw new CsrfTokenInvalidError();
}

function hasBody(req: RequestView): boolean {
  const len = req.header('content-length');
  return (len !== undefined && len !== '0') || req.header('transfer-encoding') !== undefined;
}
