/**
 * Moving a session express-session stored into Tether on the user's next visit: recognise its signed
 * `s:` cookie, read the old record, and after the data is safely in Tether delete the old record and
 * expire the old cookie, so that it can never load the session again.
 * @module
 */
import type { RequestView } from '../../core/csrf.js';
import type { CompatCookie } from './compat-cookie.js';
import type { ResolvedCompat } from './compat-options.js';
import { isLegacyValue, legacySessionId, withoutCookie } from './legacy-cookie.js';
import { jsonClone } from './merge.js';

/** An express-session session being taken over by this request. */
export interface Adoption {
  sid: string;
  /** The old cookie's path, to expire it with. */
  path: string;
  /** The old session's data, without its `cookie`. */
  data: Record<string, unknown>;
  /** The lifetime its cookie had, if it had one. */
  originalMaxAge: number | null | undefined;
}

/**
 * The view to open the Tether session with, and the express-session ID the request carries (if any and
 * correctly signed). When both share a cookie name, express-session's value is hidden from the engine:
 * it is not a Tether cookie and must not count as a bad one.
 */
export function legacyRequest(cfg: ResolvedCompat, view: RequestView): { view: RequestView; sid: string | null } {
  if (!cfg.legacy) return { view, sid: null };
  const header = view.header('cookie');
  const sid = legacySessionId(header, cfg.legacy.name, cfg.legacy.secrets);
  if (cfg.legacy.name !== cfg.name || !isLegacyValue(header, cfg.name)) return { view, sid };
  return { view: { method: view.method, header: (n) => (n === 'cookie' ? withoutCookie(header, cfg.name) : view.header(n)) }, sid };
}

/**
 * Reads the old session; null when the old store no longer has it. Calls into the old store run through
 * the engine, so that their failures count in its store errors as its own calls' do.
 */
export async function readAdoption(cfg: ResolvedCompat, sid: string): Promise<Adoption | null> {
  const source = cfg.legacy!.source;
  const old = await cfg.tether.callStore(() => source.readLegacy(sid), 'readLegacy');
  if (!old) return null;
  const { cookie, ...data } = old;
  const c = (typeof cookie === 'object' && cookie !== null ? cookie : {}) as { originalMaxAge?: unknown; path?: unknown };
  const originalMaxAge = typeof c.originalMaxAge === 'number' || c.originalMaxAge === null ? c.originalMaxAge : undefined;
  return { sid, path: typeof c.path === 'string' ? c.path : '/', data: jsonClone(data), originalMaxAge };
}

/** Deletes the old record; returns the Set-Cookie that expires the old cookie, when its name is not ours. */
export async function retire(cfg: ResolvedCompat, adoption: Adoption, defaults: CompatCookie): Promise<[string, string] | null> {
  const source = cfg.legacy!.source;
  await cfg.tether.callStore(() => source.destroyLegacy(adoption.sid), 'destroyLegacy');
  const name = cfg.legacy!.name;
  if (name === cfg.name) return null;
  const clear = defaults.clone();
  clear.path = adoption.path;
  return [name, clear.serializeClear(name)];
}
