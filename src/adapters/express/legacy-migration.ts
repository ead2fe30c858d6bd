/**
 * Moving a session express-session stored into Tether on the user's next visit: recognise its signed
 * `s:` cookie, read the old record, and after the data is safely in Tether delete the old record and
 * expire the old cookie, so that it can never load the session again. Requests of this process that
 * present the same old session meanwhile join the one adoption (`Adoptions`).
 * @module
 */
import type { RequestView } from '../../core/csrf.js';
import { SessionBusyError } from '../../core/errors.js';
import type { CompatCookie } from './compat-cookie.js';
import type { ResolvedCompat } from './compat-options.js';
import { isLegacyValue, legacySessionId, withoutCookie } from './legacy-cookie.js';
import { jsonClone } from './merge.js';

/** An express-session session being taken over by this request. */
export interface Adoption {
  sid: string;
  /** The name of the old cookie that presented it, to expire it with. */
  name: string;
  /** The old cookie's path and domain (none: a host-only cookie), to expire it with. */
  path: string;
  domain: string | undefined;
  /** The old session's data, without its `cookie`. */
  data: Record<string, unknown>;
  /** The lifetime its cookie had, if it had one (`false`: made a browser-session cookie with `expires = false`). */
  originalMaxAge: number | null | false | undefined;
}

/**
 * The view to open the Tether session with, and the express-session ID the request carries (if any and
 * correctly signed) with the name of the cookie that carried it: the first of the old names that does.
 * When Tether and express-session share a cookie name, express-session's value is hidden from the
 * engine: it is not a Tether cookie and must not count as a bad one.
 */
export function legacyRequest(cfg: ResolvedCompat, view: RequestView): { view: RequestView; sid: string | null; name: string } {
  if (!cfg.legacy) return { view, sid: null, name: '' };
  const header = view.header('cookie');
  let sid: string | null = null;
  let name = '';
  for (const n of cfg.legacy.names) {
    sid = legacySessionId(header, n, cfg.legacy.secrets);
    if (sid !== null) {
      name = n;
      break;
    }
  }
  if (!cfg.legacy.names.includes(cfg.name) || !isLegacyValue(header, cfg.name)) return { view, sid, name };
  return { view: { method: view.method, header: (n) => (n === 'cookie' ? withoutCookie(header, cfg.name) : view.header(n)) }, sid, name };
}

/**
 * Reads the old session; null when the old store no longer has it. Calls into the old store run through
 * the engine, so that their failures count in its store errors as its own calls' do.
 */
export async function readAdoption(cfg: ResolvedCompat, sid: string, name: string): Promise<Adoption | null> {
  const source = cfg.legacy!.source;
  const old = await cfg.tether.callStore(() => source.readLegacy(sid), 'readLegacy');
  if (!old) return null;
  const { cookie, ...data } = old;
  const c = (typeof cookie === 'object' && cookie !== null ? cookie : {}) as { originalMaxAge?: unknown; path?: unknown; domain?: unknown };
  const originalMaxAge = typeof c.originalMaxAge === 'number' || c.originalMaxAge === null || c.originalMaxAge === false ? c.originalMaxAge : undefined;
  return {
    sid, name, path: typeof c.path === 'string' ? c.path : '/', domain: typeof c.domain === 'string' && c.domain !== '' ? c.domain : undefined,
    data: jsonClone(data), originalMaxAge,
  };
}

/** Deletes the old record; returns the Set-Cookie that expires the old cookie, when its name is not ours. */
export async function retire(cfg: ResolvedCompat, adoption: Adoption, defaults: CompatCookie): Promise<[string, string] | null> {
  const source = cfg.legacy!.source;
  await cfg.tether.callStore(() => source.destroyLegacy(adoption.sid), 'destroyLegacy');
  return expireLegacyCookie(cfg, adoption, defaults);
}

/**
 * The Set-Cookie that expires the old cookie, named and scoped as express-session set it (a cookie is
 * replaced only by one of the same name, path and domain); null when its name is ours (our cookie replaces it).
 */
export function expireLegacyCookie(cfg: ResolvedCompat, old: Pick<Adopted, 'name' | 'path' | 'domain'>, defaults: CompatCookie): [string, string] | null {
  const { name } = old;
  if (name === cfg.name) return null;
  const clear = defaults.clone();
  clear.path = old.path;
  clear.domain = old.domain;
  return [name, clear.serializeClear(name)];
}

/** What an adoption became, for the requests that presented the same old session meanwhile. */
export interface Adopted {
  /** The Tether session that holds the old session's data. */
  id: string;
  /** The old cookie's name, path and domain, to expire it with. */
  name: string;
  path: string;
  domain: string | undefined;
}

/**
 * A request's hold on an old session ID while it adopts it. `adopted()` answers the requests waiting
 * for it as soon as the data is stored in Tether; `release()`, when the request is done, removes the
 * hold and answers null to those still waiting if nothing was adopted (they then try themselves).
 */
export class Claim {
  /** What the adoption became; null when it became no session others may join. */
  readonly outcome: Promise<Adopted | null>;
  readonly #resolve: (outcome: Adopted | null) => void;
  readonly #remove: () => void;
  #open = true;

  constructor(remove: () => void) {
    let resolve!: (outcome: Adopted | null) => void;
    this.outcome = new Promise((r) => (resolve = r));
    this.#resolve = resolve;
    this.#remove = remove;
  }

  /** The old session's data is stored in Tether as `adopted.id`. */
  adopted(adopted: Adopted): void {
    if (this.#open) this.#resolve(adopted);
  }

  /**
   * The old session ended in this request (logout, login) before it was stored: what the request
   * stores afterwards belongs to it alone, never to another holder of the old cookie.
   */
  end(): void {
    this.#open = false;
  }

  /** The request is done with the old session: the hold goes, and waiters not yet answered get null. */
  release(): void {
    this.#open = false;
    this.#resolve(null);
    this.#remove();
  }
}

/**
 * Adoptions in flight in this process, by old session ID. Without them, two first requests of one
 * browser (a page and its XHR, both still carrying only the old cookie) would each store the old data
 * under a new random ID, and the browser would keep one cookie: the other request's change lost. The
 * first to come claims the old session; the others wait, then open the Tether session it became.
 * An entry lives as long as the request holding it. Across processes nothing coordinates: an
 * express-session store has no compare-and-set to claim a record with.
 */
export class Adoptions {
  readonly #held = new Map<string, Claim>();

  /** Old sessions being adopted now. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * A claim on `sid` for this request, or, while another request holds one, what its adoption became
   * once it is known (a null outcome: claim again). Waits at most `timeoutMs` in all, as a writer waits
   * at a session's gate, then fails with SESSION_BUSY.
   */
  async claim(sid: string, timeoutMs: number): Promise<Claim | Adopted> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const held = this.#held.get(sid);
      if (held === undefined) {
        const claim: Claim = new Claim(() => {
          if (this.#held.get(sid) === claim) this.#held.delete(sid);
        });
        this.#held.set(sid, claim);
        return claim;
      }
      const adopted = await within(held.outcome, deadline - Date.now(), timeoutMs);
      if (adopted !== null) return adopted;
    }
  }
}

/** `outcome`, or SESSION_BUSY after `ms` (an outcome already known wins even when no time is left). */
function within<T>(outcome: Promise<T>, ms: number, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new SessionBusyError(timeoutMs)), Math.max(0, ms));
    void outcome.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
