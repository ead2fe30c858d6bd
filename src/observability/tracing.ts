/**
 * Tracing channels (`node:diagnostics_channel`'s TracingChannel) around the work a request waits for:
 * opening its session, committing it, and each store call. An APM (OpenTelemetry, Datadog) or an app
 * subscribes to make spans of them; the channels' `start` stores carry its context (AsyncLocalStorage)
 * into the store calls made under an open or a commit, so a store call's span has the request's as
 * its parent. Nothing is published, and nothing built, while no one subscribes.
 *
 * A context never carries what the work returned: a store call's record holds the session's data, a
 * commit's Set-Cookie values its signed ID. It carries what is safe to log (the operation, the store's
 * name, the session's handle) and, on failure, the error.
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import type { TracingChannel } from 'node:diagnostics_channel';

/** The tracing channels, by what they trace: `diagnostics.tracingChannel(name)` gives each. */
export const TRACING_CHANNEL_NAMES = {
  /** `tether.open()` (and the adapters' opening of each request's session). */
  open: 'tether:session:open',
  /** `tether.commit()` (and the adapters' commit of each request's session). */
  commit: 'tether:session:commit',
  /** One call of the engine to its store, under `storeTimeoutMs`. */
  store: 'tether:store:call',
} as const;

/** The context of `tether:session:open`. */
export interface OpenTraceContext {
  /** The request's method. */
  method: string;
  /** Once opened: the session's handle (null for a session not stored yet). */
  handle?: string | null;
  /** Once opened: whether the cookie was refused ('forged', 'unknown'), as `session.rejectedCookie`. */
  rejectedCookie?: string | null;
  error?: unknown;
}

/** The context of `tether:session:commit`. */
export interface CommitTraceContext {
  /** The session's handle when the commit began (null for a session not stored yet). */
  handle: string | null;
  error?: unknown;
}

/** The context of `tether:store:call`. */
export interface StoreTraceContext {
  /** The store method called: get, set, touch, destroy, listByUser, destroyByUser, count… */
  operation: string;
  /** The store's `name` (MemoryStore, SqliteStore, RedisStore, TieredStore…). */
  store: string;
  error?: unknown;
}

type Traced = TracingChannel<object, object>;

export const tracing = {
  open: diagnostics.tracingChannel<object, object>(TRACING_CHANNEL_NAMES.open),
  commit: diagnostics.tracingChannel<object, object>(TRACING_CHANNEL_NAMES.commit),
  store: diagnostics.tracingChannel<object, object>(TRACING_CHANNEL_NAMES.store),
};

/**
 * Whether anyone subscribes to any of the channel's five events: TracingChannel's `hasSubscribers`
 * (Node ≥ 20.13), read without building anything.
 */
export function isTraced(channel: Traced): boolean {
  return (channel as unknown as { hasSubscribers: boolean }).hasSubscribers;
}

/**
 * `fn` traced as TracingChannel's `tracePromise` traces, for work that may answer at once or with a
 * promise, and throw before either: start, end, then asyncStart and asyncEnd once settled, error on a
 * failure (a throw before anything waited too, which the returned promise then rejects with). Unlike
 * `tracePromise`, the context is not given the result. `done` adds to the context what the result
 * tells that is safe to trace.
 */
export function traced<R>(channel: Traced, context: { error?: unknown }, fn: () => R | Promise<R>, done?: (result: R) => void): Promise<R> {
  return channel.start.runStores(context, () => {
    let pending: Promise<R>;
    try {
      pending = Promise.resolve(fn());
    } catch (err) {
      pending = Promise.reject(err);
    }
    channel.end.publish(context);
    return pending.then((result) => {
      done?.(result);
      channel.asyncStart.publish(context);
      channel.asyncEnd.publish(context);
      return result;
    }, (err: unknown) => {
      context.error = err;
      channel.error.publish(context);
      channel.asyncStart.publish(context);
      channel.asyncEnd.publish(context);
      throw err;
    });
  });
}
