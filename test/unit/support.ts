/** Helpers for the engine's unit tests: request views, one-call request round trips, cookie parsing. */
import { MemoryStore } from '../../src/stores/memory/index.js';
import { Tether } from '../../src/core/engine.js';
import type { TetherOptions } from '../../src/core/options.js';
import type { Session, SessionData } from '../../src/core/session.js';
import type { RequestView } from '../../src/core/csrf.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';
import { ManualClock } from '../../src/testing/store-suite.js';
import { isMoved } from '../../src/core/renewal.js';

export { ManualClock, FaultyStore };

export const SECRET_A = 'test-secret-A-0123456789abcdefghijklmnop';
export const SECRET_B = 'test-secret-B-0123456789abcdefghijklmnop';
export const SECRET_C = 'test-secret-C-0123456789abcdefghijklmnop';

export function view(method = 'GET', headers: Record<string, string> = {}): RequestView {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, header: (name) => lower[name] };
}

export interface Rig<T extends object = SessionData> {
  tether: Tether<T>;
  store: FaultyStore;
  memory: MemoryStore;
  clock: ManualClock;
}

/** An engine over a counting MemoryStore and a hand-moved clock; `store` may be shared between rigs. */
export function rig<T extends object = SessionData>(options: TetherOptions = {}, shared?: { store: FaultyStore; memory: MemoryStore; clock: ManualClock }): Rig<T> {
  const clock = shared?.clock ?? new ManualClock();
  const memory = shared?.memory ?? new MemoryStore({ clock, sweepIntervalMs: 0 });
  const store = shared?.store ?? new FaultyStore(memory);
  const tether = new Tether<T>({ secrets: [SECRET_A], clock, store, ...options });
  return { tether, store, memory, clock };
}

/** The `name=value` pair of the last Set-Cookie for the session cookie, for the next request's Cookie header. */
export function cookiePair(setCookies: readonly string[], name = 'sid'): string | undefined {
  const mine = setCookies.filter((c) => c.startsWith(`${name}=`));
  const last = mine.at(-1);
  return last?.split(';')[0];
}

export interface Trip<T extends object> {
  session: Session<T>;
  setCookies: string[];
  /** The cookie to send next: the new one if one was set (empty string if it was cleared), else the one sent. */
  cookie: string | undefined;
}

/** One request: open with `cookie`, run `fn`, commit. */
export async function trip<T extends object>(
  tether: Tether<T>,
  cookie: string | undefined,
  fn: (s: Session<T>) => unknown = () => {},
  method = 'POST',
  headers: Record<string, string> = {},
): Promise<Trip<T>> {
  const session = await tether.open(view(method, cookie === undefined ? headers : { ...headers, cookie }));
  try {
    await fn(session);
  } catch (err) {
    tether.abandon(session);
    throw err;
  }
  const setCookies = await tether.commit(session);
  const next = cookiePair(setCookies, tether.options.cookie.name);
  const cleared = next !== undefined && next.endsWith('=');
  return { session, setCookies, cookie: cleared ? '' : next ?? cookie };
}

/** The raw cookie value (`id.signature`) of a `name=value` pair. */
export function valueOf(pair: string): string {
  return pair.slice(pair.indexOf('=') + 1);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Holds the next renewal written through `store` between its two writes: the copy under the new ID
 * stored, the pointer under the old one not yet. `atPointer` resolves once it is held there; `release()`
 * lets it go.
 */
export function holdAtPointer(store: FaultyStore): { atPointer: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => void (release = resolve));
  let reached!: () => void;
  const atPointer = new Promise<void>((resolve) => void (reached = resolve));
  store.beforeSet = async (rec) => {
    if (!isMoved(rec.data)) return;
    reached();
    await held;
  };
  return { atPointer, release };
}
