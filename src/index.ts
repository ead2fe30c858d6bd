/**
 * tether: the session engine, its public types and errors. Nothing here loads a driver or a framework.
 * @module
 * @example
 * import { createTether } from 'tether';
 * const tether = createTether({ secrets: [process.env.TETHER_SECRET!] });
 */
export { Tether, createTether } from './core/engine.js';
export type { OpenOptions, UserSessionInfo, EngineStats, RequestView } from './core/engine.js';
export { Session } from './core/session.js';
export { SocketSession } from './core/socket.js';
export type { SocketOptions, SocketEndReason } from './core/socket.js';
export type { RejectedCookie, SessionData, UpdateFn } from './core/session.js';
export { resolveOptions, secretProblem, TETHER_DEFAULTS } from './core/options.js';
export type { TetherOptions, CookieOptions, CsrfOptions, SameSite, ResolvedOptions, ClearSiteDataType } from './core/options.js';
export type { SessionStore, SessionRecord, LocalSlot, SetResult, Clock, DestroyByUserOptions, DestroyAllOptions, ChangeFeedOptions, CountOptions } from './core/store.js';
export type { SharedLimiter } from './core/rate-limit.js';
export { systemClock, isExpired, deadlineOf, countMargin, ServerClock } from './core/store.js';
export { jsonCodec, parseJsonSafely } from './core/codec.js';
export type { SessionCodec, Envelope } from './core/codec.js';
export { encryptedCodec } from './core/encrypted-codec.js';
export type { EncryptedCodecOptions } from './core/encrypted-codec.js';
export { UserContexts } from './core/user-context.js';
export type { UserContextData } from './core/user-context.js';
export { isSafeMethod } from './core/csrf.js';
export { clientNetwork } from './core/network.js';
export { MemoryStore } from './stores/memory/index.js';
export type { MemoryStoreOptions } from './stores/memory/index.js';
export { CHANNEL_NAMES } from './observability/channels.js';
export { TRACING_CHANNEL_NAMES } from './observability/tracing.js';
export type { OpenTraceContext, CommitTraceContext, StoreTraceContext } from './observability/tracing.js';
export type { LifecycleEvent, LifecycleMessage } from './observability/channels.js';
export * from './core/errors.js';
