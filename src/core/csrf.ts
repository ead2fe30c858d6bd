/**
 * CSRF defence bound to the session (OWASP CSRF cheat sheet): Fetch Metadata, Origin/Referer, the
 * CORS-simple content types, and a per-session synchronizer token that never travels in a cookie: sent
 * in a header, or, with `forms`, in an HTML form's field.
 * @module
 */
import { CsrfTokenInvalidError, OriginMismatchError, UnsupportedMediaTypeError } from './errors.js';
import type { ResolvedCsrf } from './options.js';
import { safeEqual } from './signer.js';

/** The adapter's view of a request: method and (lower-case) header lookup. */
export interface RequestView {
  method: string;
  header(name: string): string | undefined;
  /**
   * The client's address as the framework gives it (Express's and Fastify's `req.ip`, under their
   * trust-proxy settings; the socket's peer on node:http). Asked only under `addressChange`; absent or
   * undefined: nothing is compared.
   */
  address?(): string | undefined;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const FORM_TYPE = /^(?:application\/x-www-form-urlencoded|multipart\/form-data)\s*(?:;|$)/i;
const FORMS_TOO = 'this route accepts application/json, application/x-www-form-urlencoded or multipart/form-data only';

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

function allowed(opts: Pick<ResolvedCsrf, 'origins' | 'secureOrigins'>, origin: string, req: RequestView): boolean {
  if (opts.origins) return opts.origins.includes(origin);
  // Default: the host the request was addressed to. TLS usually ends at a proxy, so the request's own
  // scheme is not known without trusting forwarded headers; but a site whose cookie is Secure is served
  // over HTTPS, and a browser sends that cookie to no other origin than a secure one.
  // Over HTTP/2 the authority is the `:authority` pseudo-header, which Node's compatibility API (and
  // the frameworks on it) lists among the headers; a client sends Host there only optionally (RFC 9113
  // §8.3.1), and browsers do not.
  const host = req.header('host') ?? req.header(':authority');
  if (host === undefined) return false;
  const url = new URL(origin);
  if (opts.secureOrigins && !secureOrigin(url)) return false;
  if (url.host === host.toLowerCase()) return true;
  // A Host that names the scheme's default port (app:80) names the origin a browser writes without it.
  return sameHost(url.protocol, url.host, host);
}

/**
 * An origin a browser counts as secure (a "potentially trustworthy" one, W3C Secure Contexts §3.1):
 * https, or http to a loopback host, where browsers send Secure cookies too (a production build tried
 * on http://localhost).
 */
function secureOrigin(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  const name = url.hostname;
  return name === 'localhost' || name.endsWith('.localhost') || name === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(name);
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

/**
 * Sec-Fetch-Site, then Origin (or, with `referer`, the Referer when Origin is absent) against the
 * allowed origins; with neither, refused only under `requireOrigin`. Throws ORIGIN_MISMATCH.
 */
export function checkOrigin(opts: Pick<ResolvedCsrf, 'origins' | 'requireOrigin' | 'secureOrigins'>, req: RequestView, referer: boolean): void {
  if (req.header('sec-fetch-site') === 'cross-site') throw new OriginMismatchError('cross-site request refused (Sec-Fetch-Site)');
  const originHeader = req.header('origin');
  if (originHeader !== undefined) {
    const origin = originOf(originHeader);
    if (origin === null || !allowed(opts, origin, req)) throw new OriginMismatchError();
    return;
  }
  const refererHeader = referer ? req.header('referer') : undefined;
  if (refererHeader !== undefined) {
    const origin = originOf(refererHeader);
    if (origin === null || !allowed(opts, origin, req)) throw new OriginMismatchError('the Referer names another origin');
  } else if (opts.requireOrigin) {
    throw new OriginMismatchError(referer ? 'an unsafe request must carry Origin or Referer' : 'the request must carry Origin');
  }
}

/**
 * Every check the request's head decides: Sec-Fetch-Site, Origin/Referer, content type, and the token
 * when the header carries it. Returns true when the token is still to be read from the form body (a
 * form post without the header, `forms` on): `checkCsrfForm` does that once the body is parsed.
 */
export function checkCsrfHead(opts: ResolvedCsrf, token: string | undefined, req: RequestView): boolean {
  if (SAFE.has(req.method)) return false;
  checkOrigin(opts, req, true);
  if (opts.jsonOnly && hasBody(req)) {
    const type = req.header('content-type');
    if (type === undefined || !JSON_TYPE.test(type)) refuseType(opts, type);
  }
  const given = req.header(opts.header);
  // The form cases live apart, so a JSON request runs the same code as without forms.
  if (given === undefined) return formPending(opts, req);
  if (token === undefined || !safeEqual(given, token)) throw new CsrfTokenInvalidError(tokenMessage(opts));
  return false;
}

/** Names the header the token is expected in: the configured one, not the default's. */
function tokenMessage(opts: ResolvedCsrf): string {
  return `missing or invalid CSRF token (header ${opts.header})`;
}

/** A body that is not JSON: refused, unless forms are on and it is one. */
function refuseType(opts: ResolvedCsrf, type: string | undefined): void {
  if (!opts.forms) throw new UnsupportedMediaTypeError();
  if (type === undefined || !FORM_TYPE.test(type)) throw new UnsupportedMediaTypeError(FORMS_TOO);
}

/** No token header: a form post's token is still to come from its body (forms on); anything else is refused. */
function formPending(opts: ResolvedCsrf, req: RequestView): true {
  if (opts.forms && isFormPost(req)) return true;
  throw new CsrfTokenInvalidError(tokenMessage(opts));
}

/**
 * The token of a form post, from `form[opts.formField]`: a parsed body (an object of fields). A field
 * that is missing, not a string (a file) or repeated (an array, as parsers give a field sent twice) is
 * refused, never picked from: a body that names the token twice is not one a page of ours rendered.
 */
export function checkCsrfForm(opts: ResolvedCsrf, token: string | undefined, form: object | undefined): void {
  const field = opts.formField;
  if (typeof form !== 'object' || form === null) {
    throw new CsrfTokenInvalidError(`missing CSRF token: the form body was not parsed before the CSRF check, so its ${field} field could not be read`);
  }
  const given = Object.hasOwn(form, field) ? (form as Record<string, unknown>)[field] : undefined;
  if (Array.isArray(given)) throw new CsrfTokenInvalidError(`invalid CSRF token: the form field ${field} was sent more than once`);
  if (typeof given !== 'string' || token === undefined || !safeEqual(given, token)) {
    throw new CsrfTokenInvalidError(`missing or invalid CSRF token (form field ${field} or header ${opts.header})`);
  }
}

/** The complete check; `form` is the parsed body, read only when the token is to come from it. */
export function checkCsrf(opts: ResolvedCsrf, token: string | undefined, req: RequestView, form?: object): void {
  if (checkCsrfHead(opts, token, req)) checkCsrfForm(opts, token, form);
}

/** A form post with a body: the content types an HTML form sends, that a form field can be read from. */
function isFormPost(req: RequestView): boolean {
  const type = req.header('content-type');
  return type !== undefined && FORM_TYPE.test(type) && hasBody(req);
}

function hasBody(req: RequestView): boolean {
  const len = req.header('content-length');
  return (len !== undefined && len !== '0') || req.header('transfer-encoding') !== undefined;
}
