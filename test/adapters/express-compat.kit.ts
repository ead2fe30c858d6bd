/**
 * Shared set-up of the express-session drop-in's tests: an Express app on the compat middleware over
 * a counting MemoryStore and a hand-moved clock, listening on a loopback port.
 */
import http from 'node:http';
import express from 'express';
import type { Request, Response, NextFunction } from 'express';
import session from 'tether/express';
import type { CompatMiddleware, CompatSessionOptions } from 'tether/express';
import { MemoryStore, jsonCodec } from 'tether';
import type { SessionStore } from 'tether';
import { hashId } from '../../src/core/ids.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';
import { ManualClock } from '../../src/testing/store-suite.js';
import { listen, CookieClient } from '../helpers/cookie-client.js';

export { ManualClock, FaultyStore };

/** Long enough for Tether (≥ 32 characters), so no HKDF warning in tests that do not test it. */
export const SECRET = 'compat-test-secret-0123456789abcdefghij';

export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export interface Backend {
  clock: ManualClock;
  memory: MemoryStore;
  store: FaultyStore;
}

export function backend(): Backend {
  const clock = new ManualClock();
  const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
  return { clock, memory, store: new FaultyStore(memory) };
}

export interface CompatApp extends Backend {
  url: string;
  mw: CompatMiddleware;
  client(): CookieClient;
  close(): Promise<void>;
}

/** An app on `session(options)`; errors answer `{"error":{code,message}}` with their status, as Tether's do. */
export async function compatApp(
  options: CompatSessionOptions,
  routes: (app: express.Express) => void,
  shared: Backend = backend(),
  store: SessionStore = shared.store,
): Promise<CompatApp> {
  const app = express();
  const mw = session({ secret: SECRET, store, ...options, tether: { clock: shared.clock, ...options.tether } });
  app.use(mw);
  routes(app);
  app.use((err: { status?: number; code?: string; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status ?? 500).json({ error: { code: err.code ?? 'ERROR', message: err.message } });
  });
  const server = await listen(app);
  return { ...shared, url: server.url, mw, client: () => new CookieClient(server.url), close: () => server.close() };
}

/** The session ID inside a Tether cookie value (`id.signature`). */
export function idOf(cookieValue: string | undefined): string {
  if (!cookieValue) throw new Error('no cookie');
  return cookieValue.slice(0, cookieValue.lastIndexOf('.'));
}

/** Whether the session `cookie` names is stored as remembered ("keep me signed in"); null when none is stored. */
export async function rememberedIn(store: SessionStore, cookie: string | undefined): Promise<boolean | null> {
  const rec = await store.get(hashId(idOf(cookie)));
  return rec ? jsonCodec.decode(rec.data).r === 1 : null;
}

/** The stored data of the session a cookie value names, or null when there is no record. */
export async function storedData(store: SessionStore, cookieValue: string | undefined): Promise<Record<string, unknown> | null> {
  const rec = await store.get(hashId(idOf(cookieValue)));
  return rec ? jsonCodec.decode(rec.data).d : null;
}

/** The warnings with a code emitted while `fn` runs (and one turn after, as emitWarning is asynchronous), with their messages. */
export async function warningMessagesDuring(fn: () => unknown): Promise<Array<[code: string, message: string]>> {
  const seen: Array<[string, string]> = [];
  const on = (w: Error & { code?: string }): void => {
    if (w.code) seen.push([w.code, w.message]);
  };
  process.on('warning', on);
  try {
    await fn();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', on);
  }
  return seen;
}

/** The warning codes emitted while `fn` runs. */
export async function warningsDuring(fn: () => unknown): Promise<string[]> {
  return (await warningMessagesDuring(fn)).map(([code]) => code);
}

/** A latch a handler awaits, released by the test: holds a request inside its handler. */
export function latch(): { entered: Promise<void>; enter: () => void; release: () => void; wait: Promise<void> } {
  let enter!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  const wait = new Promise<void>((r) => (release = r));
  return { entered, enter, release, wait };
}

/**
 * A request whose client goes away before it is answered, as a browser tab closed mid-load: sent at
 * once, `leave()` destroys its socket.
 */
export function leavingRequest(url: string, path: string, cookie?: string): { leave(): void } {
  const req = http.request(`${url}${path}`, { headers: cookie === undefined ? {} : { cookie } });
  req.on('error', () => {});
  req.end();
  return { leave: () => req.destroy() };
}

/**
 * Middleware to mount before session(). Asked before the request for `path` is sent, `arrived(path)`
 * resolves once it has come in and gone as far as it can without I/O, `closed(path)` once its
 * response has closed (its client went away, or it was answered).
 */
export function arrivals(): { mw: express.RequestHandler; arrived(path: string): Promise<void>; closed(path: string): Promise<void> } {
  const arrived = new Map<string, () => void>();
  const closed = new Map<string, () => void>();
  const on = (map: Map<string, () => void>, path: string): Promise<void> => new Promise<void>((r) => map.set(path, r));
  return {
    mw: (req, res, next) => {
      const onClose = closed.get(req.path);
      if (onClose) res.once('close', onClose);
      arrived.get(req.path)?.();
      next();
    },
    arrived: async (path) => {
      await on(arrived, path);
      await new Promise((r) => setImmediate(r));
    },
    closed: (path) => on(closed, path),
  };
}
