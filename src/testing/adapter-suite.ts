/**
 * The adapter conformance suite: one set of HTTP-level `node:test` cases that every adapter (ours or a
 * third party's) passes over a real loopback socket. An adapter's test file supplies only `start()`, a
 * tiny app serving `suiteRoutes()` with its framework.
 * @module
 * @example
 * import { runAdapterSuite, listen, routeFor } from 'tether/testing';
 * runAdapterSuite({
 *   name: 'node:http',
 *   start: async (tether, routes) => listen(createServer(withSessions(tether, async (req, res, session) => { … }))),
 * });
 */
import { describe, it, before, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Tether } from '../core/engine.js';
import type { TetherOptions } from '../core/options.js';
import { MemoryStore } from '../stores/memory/index.js';
import { FaultyStore } from './faulty-store.js';
import { ManualClock } from './store-suite.js';
import { client, suiteRoutes } from './adapter-kit.js';
import type { Reply, RunningApp, SuiteData, SuiteRoute } from './adapter-kit.js';
import { sessionCases } from './adapter-cases-session.js';
import { safetyCases } from './adapter-cases-safety.js';
import { optionalCases } from './adapter-cases-optional.js';

export interface AdapterSuiteOptions {
  /** Shown in test names, e.g. "fastify". */
  name: string;
  /**
   * Starts an app on 127.0.0.1 (port 0) that serves every route in `routes` through the adapter, with
   * sessions from `tether`. Called once per case; the suite closes the app when the case ends.
   */
  start(tether: Tether<SuiteData>, routes: readonly SuiteRoute[]): Promise<RunningApp>;
  /** Case names to skip, each with the reason, printed in the test output. */
  skip?: Record<string, string>;
  /**
   * Whether the adapter offers optional sessions (routes served without a session while the store is
   * down: tether/node's `session: 'optional'`), and `start` serves the routes whose `session` is
   * `'optional'` so. An adapter without them leaves the feature out, and the suite its cases.
   * @default true
   */
  optionalSessions?: boolean;
}

/** Secrets the suite signs with; `SUITE_SECRETS[1]` plays the rotated-out secret. */
export const SUITE_SECRETS = ['adapter-suite-secret-0123456789-abcdefgh', 'adapter-suite-old-secret-0123456789-abcd'] as const;

/** One app under test, with everything a case needs to poke at it. */
export interface SuiteEnv {
  tether: Tether<SuiteData>;
  /** Counts and logs every store call; can be told to hang or fail. */
  store: FaultyStore;
  /** The backend behind `store`, for checks that must not count as traffic. */
  memory: MemoryStore;
  clock: ManualClock;
  app: RunningApp;
  call: ReturnType<typeof client>;
  /** What POST /slow and GET /slow-read await; replace per case. */
  hooks: { hold: () => Promise<void> };
}

export interface SuiteContext {
  test: (name: string, fn: (t: TestContext) => Promise<void>) => void;
  /** A fresh app; pass `shareWith` to run a second engine (another process's worth) on the same store and clock. */
  setup: (t: TestContext, options?: TetherOptions, shareWith?: SuiteEnv) => Promise<SuiteEnv>;
  /** Creates a session through the app: GET /token. */
  newSession: (env: SuiteEnv) => Promise<{ cookie: string; token: string; reply: Reply }>;
}

/**
 * Runs every case twice: over a store that answers reads from memory at once (`getLocal`, as the
 * default MemoryStore does), where the engine opens and commits without a promise, and over one that
 * answers each call with a promise (SQLite, Redis, PostgreSQL).
 */
export function runAdapterSuite(options: AdapterSuiteOptions): void {
  for (const local of [true, false]) runAdapterCases(options, local);
}

function runAdapterCases(options: AdapterSuiteOptions, local: boolean): void {
  describe(`${options.name} adapter conformance, store answering ${local ? 'from memory' : 'by promise'}`, () => {
    // A crash, "headers already sent" or a stray rejection anywhere in the process fails the suite.
    const crashes: unknown[] = [];
    const onCrash = (err: unknown): void => void crashes.push(err);
    before(() => {
      process.on('uncaughtException', onCrash);
      process.on('unhandledRejection', onCrash);
    });
    after(() => {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
    });

    const ctx: SuiteContext = {
      test(name, fn) {
        const reason = options.skip?.[name];
        const body = async (t: TestContext): Promise<void> => {
          await fn(t);
          assert.deepEqual(crashes.splice(0), [], 'no uncaught exception or unhandled rejection');
        };
        if (reason !== undefined) it(name, { skip: reason }, body);
        else it(name, body);
      },

      async setup(t, tetherOptions = {}, shareWith) {
        const clock = shareWith?.clock ?? new ManualClock();
        const memory = shareWith?.memory ?? new MemoryStore({ clock, sweepIntervalMs: 0 });
        const store = shareWith?.store ?? new FaultyStore(memory, undefined, { local });
        const tether = new Tether<SuiteData>({ secrets: [SUITE_SECRETS[0]], clock, store, ...tetherOptions });
        const hooks = { hold: async (): Promise<void> => {} };
        const app = await options.start(tether, suiteRoutes({ hold: () => hooks.hold() }));
        t.after(() => app.close());
        return { tether, store, memory, clock, app, call: client(app, tether.options.cookie.name), hooks };
      },

      async newSession(env) {
        const reply = await env.call('GET', '/token');
        assert.equal(reply.status, 200);
        const token = reply.json?.token;
        assert.equal(typeof token, 'string');
        assert.ok(reply.cookie, 'GET /token sets the session cookie');
        return { cookie: reply.cookie, token: token as string, reply };
      },
    };

    sessionCases(ctx);
    safetyCases(ctx);
    if (options.optionalSessions !== false) optionalCases(ctx);
  });
}

export { suiteRoutes, routeFor, listen, client } from './adapter-kit.js';
export type { SuiteData, SuiteRoute, RouteResult, RouteHooks, RunningApp, Reply, CallOptions } from './adapter-kit.js';
