/**
 * CSRF for apps on the express-session drop-in, which checks none by default (express-session apps send
 * no tokens): `csrfProtection()` runs Tether's checks where it is mounted, `csrfTokenOf(req)` gives the
 * session's token for forms and scripts.
 * @module
 */
import type { Request, Response, NextFunction, RequestHandler } from 'express';
import { checkCsrf } from '../../core/csrf.js';
import { sessionState } from '../../core/session.js';
import { controllerOf } from './compat-request.js';

/**
 * The request's CSRF token (creating the session if needed); it changes when the session is
 * regenerated, e.g. at login. Put it in forms as `_csrf` or send it in the `X-CSRF-Token` header.
 */
export function csrfTokenOf(req: Request): Promise<string> {
  return controllerOf(req).withSession((s) => s.csrfToken);
}

export interface CsrfProtectionOptions {
  /** Body field that carries the token in HTML forms (the body must be parsed first). @default `tether.csrf.formField`, '_csrf' */
  field?: string;
}

/**
 * Tether's CSRF checks: Sec-Fetch-Site, Origin/Referer, and the session's synchronizer token from the
 * header (`tether.csrf.header`, default X-CSRF-Token) or the `_csrf` body field. Mount it after a body parser.
 * Where the request's session cookie is Secure (`secure: true`; `'auto'` on an HTTPS request; what a
 * `cookie` function returned), the Origin or Referer must be a secure one and an unsafe request must
 * carry one of them, as `tether.csrf.secureOrigins` and `requireOrigin` say unless set there.
 * @example
 * app.use(session({ secret }));
 * app.use(express.urlencoded({ extended: false }));
 * app.use(csrfProtection());
 * app.get('/form', async (req, res) => res.send(`<input type="hidden" name="_csrf" value="${await csrfTokenOf(req)}">`));
 */
export function csrfProtection(options: CsrfProtectionOptions = {}): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction): void => {
    let check: Promise<void>;
    try {
      const ctl = controllerOf(req);
      check = ctl.withSession((session, view) => {
        const csrf = ctl.tether.options.csrf;
        if (csrf === false) return;
        const headerName = csrf.header;
        const field = options.field ?? csrf.formField;
        const body = (req as { body?: unknown }).body;
        const form = typeof body === 'object' && body !== null ? body : undefined;
        const fromBody = form === undefined ? undefined : (form as Record<string, unknown>)[field];
        // The field stands in for the header (jsonOnly is off here by default); with `tether.csrf.forms`
        // the engine reads the body itself when neither carries it, and says why it refuses.
        checkCsrf({ ...csrf, ...ctl.originChecks() }, sessionState(session).csrf, {
          method: view.method,
          header: (n) => (n === headerName ? view.header(n) ?? (typeof fromBody === 'string' ? fromBody : undefined) : view.header(n)),
        }, form);
      });
    } catch (err) {
      next(err);
      return;
    }
    check.then(() => next(), next);
  };
}
