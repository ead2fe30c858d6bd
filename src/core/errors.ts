/**
 * Every error Tether raises, each with a stable `code` and, where it maps to HTTP, a status.
 *
 * Callers match on `code`, never on `instanceof`: two copies of the package in one process
 * would break `instanceof`, a string compare does not. Codes are forever; docs/errors.md lists
 * them and a test keeps that list and this module in agreement.
 * @module
 */

export interface TetherErrorOptions {
  cause?: unknown;
  /** Seconds the client should wait before trying again. @default 1 for a 503 (a store outage, a busy session), none otherwise */
  retryAfterSec?: number;
}

/** The base class: `code` is the same string the HTTP adapters put in `{"error":{"code"}}`. */
export class TetherError extends Error {
  readonly code: string;
  readonly status: number;
  /** Seconds the client should wait before trying again (the adapters send it as Retry-After): 1 for a 503 unless the error says otherwise. */
  readonly retryAfterSec: number | undefined;
  constructor(code: string, message: string, status = 500, options: TetherErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TetherError';
    this.code = code;
    this.status = status;
    this.retryAfterSec = options.retryAfterSec ?? (status === 503 ? 1 : undefined);
  }

  /** The JSON body every adapter sends for this error. */
  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** An option passed to a constructor is unknown, mistyped or unsafe. Raised at construction only. */
export class OptionsInvalidError extends TetherError {
  constructor(message: string) {
    super('OPTIONS_INVALID', message, 500);
    this.name = 'OptionsInvalidError';
  }
}

/** The store did not answer in time or failed; the request fails closed. */
export class StoreUnavailableError extends TetherError {
  constructor(message: string, options: TetherErrorOptions = {}) {
    super('STORE_UNAVAILABLE', message, 503, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The store was closed and cannot serve this call. */
export class StoreClosedError extends TetherError {
  constructor(storeName: string) {
    super('STORE_CLOSED', `${storeName} is closed`, 503);
    this.name = 'StoreClosedError';
  }
}

/**
 * The store refused the values of a call it can never accept (PostgreSQL's data exceptions, such as a
 * NUL character in text): the same call fails every time, so unlike STORE_UNAVAILABLE it is not worth
 * retrying, and the store itself is up.
 */
export class StoreRejectedError extends TetherError {
  constructor(message: string, options: TetherErrorOptions = {}) {
    super('STORE_REJECTED', message, 500, options);
    this.name = 'StoreRejectedError';
  }
}

/** A write lost a compare-and-set race (or the session ended meanwhile) and could not be replayed. */
export class SessionConflictError extends TetherError {
  constructor(message = 'the session was changed or ended by another request; retry') {
    super('SESSION_CONFLICT', message, 409);
    this.name = 'SessionConflictError';
  }
}

/** The serialised session exceeds `maxSessionBytes`; nothing was written. */
export class SessionTooLargeError extends TetherError {
  constructor(bytes: number, limit: number) {
    super('SESSION_TOO_LARGE', `the session would take ${bytes} bytes, over the limit of ${limit} (option maxSessionBytes)`, 413);
    this.name = 'SessionTooLargeError';
  }
}

/** The stored user context would exceed `maxUserContextBytes`; nothing was written. */
export class UserContextTooLargeError extends TetherError {
  constructor(bytes: number, limit: number) {
    super('USER_CONTEXT_TOO_LARGE', `the user context would take ${bytes} bytes, over the limit of ${limit} (option maxUserContextBytes)`, 413);
    this.name = 'UserContextTooLargeError';
  }
}

/**
 * A form body longer than the adapter reads for its CSRF field (tether/hono `formBodyLimit`, with
 * `csrf.forms`); the request was refused before the handler, with nothing read past the limit.
 */
export class PayloadTooLargeError extends TetherError {
  constructor(limit: number) {
    super('PAYLOAD_TOO_LARGE', `the form body is over the limit of ${limit} bytes read for its CSRF field (option formBodyLimit); send the token in the x-csrf-token header instead, or raise the limit`, 413);
    this.name = 'PayloadTooLargeError';
  }
}

/**
 * A sensitive action needs the user to prove who they are again (`session.requireRecentAuth()`): not
 * signed in, or signed in longer ago than the action allows. Answer with a password prompt.
 */
export class ReauthRequiredError extends TetherError {
  constructor(message = 'confirm who you are again (sign in, or re-enter your password) to do this') {
    super('REAUTH_REQUIRED', message, 401);
    this.name = 'ReauthRequiredError';
  }
}

/** A session data key that would clash with prototypes or is not a string. */
export class SessionKeyInvalidError extends TetherError {
  constructor(key: string) {
    super('SESSION_KEY_INVALID', `"${key}" cannot be used as a session data key`, 400);
    this.name = 'SessionKeyInvalidError';
  }
}

/**
 * A user ID that stores could not keep apart from another, or index: not a string, empty, longer than
 * MAX_USER_ID_BYTES in UTF-8, holding U+0000, or not well-formed UTF-16 (a lone surrogate). Stores index
 * sessions by the ID's UTF-8 bytes, where every lone surrogate becomes U+FFFD: two such IDs would name
 * one user, whose session list and "log out everywhere" would then reach the other's sessions.
 */
export class UserIdInvalidError extends TetherError {
  constructor(why: string) {
    super('USER_ID_INVALID', `invalid user ID: ${why}`, 400);
    this.name = 'UserIdInvalidError';
  }
}

/** The session ended (destroyed) and can no longer be used in this request. */
export class SessionEndedError extends TetherError {
  constructor() {
    super('SESSION_ENDED', 'the session was destroyed in this request', 409);
    this.name = 'SessionEndedError';
  }
}

/**
 * The session was changed after the engine had committed this request's session (or dropped its
 * changes): a streamed or hijacked response whose body is still being written, or code that runs after
 * the response was sent. The change could no longer be stored, so it is refused instead of being lost
 * without a word. A mistake in the application, not the client's: make the change before the response.
 */
export class SessionCommittedError extends TetherError {
  constructor() {
    super('SESSION_COMMITTED', 'the session was changed after this request\'s session was committed (a streamed or hijacked response, or code that runs after the response): make session changes before the response is sent', 500);
    this.name = 'SessionCommittedError';
  }
}

/** An unsafe request without the session's synchronizer token (in its header, or its form field with `csrf.forms`). */
export class CsrfTokenInvalidError extends TetherError {
  constructor(message = 'missing or invalid CSRF token (header x-csrf-token)') {
    super('CSRF_TOKEN_INVALID', message, 403);
    this.name = 'CsrfTokenInvalidError';
  }
}

/** An unsafe request from another origin (Origin, Referer or Sec-Fetch-Site). */
export class OriginMismatchError extends TetherError {
  constructor(message = 'the request comes from another origin') {
    super('ORIGIN_MISMATCH', message, 403);
    this.name = 'OriginMismatchError';
  }
}

/** A JSON route was sent a CORS-simple content type (text/plain, or a form without `csrf.forms`). */
export class UnsupportedMediaTypeError extends TetherError {
  constructor(message = 'this route accepts application/json only') {
    super('UNSUPPORTED_MEDIA_TYPE', message, 415);
    this.name = 'UnsupportedMediaTypeError';
  }
}

/** Too many new sessions from one client. */
export class RateLimitedError extends TetherError {
  /** Seconds the client should wait: the adapters send it as Retry-After. @default 60 */
  declare readonly retryAfterSec: number;
  constructor(message = 'too many new sessions from this address; slow down', retryAfterSec = 60) {
    super('RATE_LIMITED', message, 429, { retryAfterSec });
    this.name = 'RateLimitedError';
  }
}

/**
 * The store already holds `newSessions.maxActive` live sessions (as last counted, plus those this
 * engine stored since): no new one is stored until some end. The client did nothing wrong, so 503, with
 * Retry-After: when the store is counted again.
 */
export class TooManySessionsError extends TetherError {
  /** Seconds until the store is counted again: the adapters send it as Retry-After. */
  declare readonly retryAfterSec: number;
  constructor(message: string, retryAfterSec: number) {
    super('TOO_MANY_SESSIONS', message, 503, { retryAfterSec });
    this.name = 'TooManySessionsError';
  }
}

/** A flow step posted out of order. */
export class FlowStepOutOfOrderError extends TetherError {
  constructor(message: string) {
    super('FLOW_STEP_OUT_OF_ORDER', message, 409);
    this.name = 'FlowStepOutOfOrderError';
  }
}

/**
 * A flow's run is being completed (`complete()` took it and runs its action): its steps cannot change
 * under the order being placed. Try again once it is done (a new run then starts).
 */
export class FlowCompletingError extends TetherError {
  constructor(message: string) {
    super('FLOW_COMPLETING', message, 409);
    this.name = 'FlowCompletingError';
  }
}

/**
 * A flow call named the run it was meant for (`{ runId }`, the run the page showed), and that run is
 * not the current one: it ended (completed, reset, expired) or another replaced it. Nothing was changed.
 */
export class FlowRunNotCurrentError extends TetherError {
  constructor(message: string) {
    super('FLOW_RUN_NOT_CURRENT', message, 409);
    this.name = 'FlowRunNotCurrentError';
  }
}

/**
 * A flow's `complete()` ran its action, but the run was changed after the completion's hold lapsed
 * (COMPLETING_HOLD_MS): the action's effect stands (`result`, recorded by `onCompleted`), and the run was
 * not ended, so that the change is kept; it continues under a new `runId`. Also when the run was reset
 * (or replaced by a new run) after the hold lapsed: it stays removed, and the action is recorded all the same.
 */
export class FlowRunChangedError extends TetherError {
  /** What the action returned. */
  declare readonly result: unknown;
  constructor(message: string, result: unknown) {
    super('FLOW_RUN_CHANGED', message, 409);
    Object.defineProperty(this, 'result', { value: result, enumerable: false, writable: false, configurable: true });
    this.name = 'FlowRunChangedError';
  }
}

/** A flow was asked for a step it does not declare (usually a step name taken from the request path). */
export class FlowStepUnknownError extends TetherError {
  constructor(message: string) {
    super('FLOW_STEP_UNKNOWN', message, 404);
    this.name = 'FlowStepUnknownError';
  }
}

/** A store URL in a form `createStore` does not know. */
export class StoreUrlInvalidError extends TetherError {
  constructor(message: string) {
    super('STORE_URL_INVALID', message, 500);
    this.name = 'StoreUrlInvalidError';
  }
}

/** Another request held the session (per-session gate) for longer than `gateTimeoutMs`. */
export class SessionBusyError extends TetherError {
  constructor(timeoutMs: number) {
    super('SESSION_BUSY', `another request held this session for over ${timeoutMs} ms (option gateTimeoutMs)`, 503);
    this.name = 'SessionBusyError';
  }
}

/**
 * What the HTTP adapters answer for a failure that is not a TetherError (a bug or a driver error that
 * escaped): the details stay in the server, the client learns only that it failed.
 */
export class InternalError extends TetherError {
  constructor(options: TetherErrorOptions = {}) {
    super('INTERNAL_ERROR', 'internal server error', 500, options);
    this.name = 'InternalError';
  }
}

/** Every code above, for docs/errors.md and the test that keeps both in step. */
export const ERROR_CODES = [
  'OPTIONS_INVALID',
  'STORE_UNAVAILABLE',
  'STORE_CLOSED',
  'STORE_REJECTED',
  'SESSION_CONFLICT',
  'SESSION_TOO_LARGE',
  'USER_CONTEXT_TOO_LARGE',
  'PAYLOAD_TOO_LARGE',
  'REAUTH_REQUIRED',
  'SESSION_KEY_INVALID',
  'USER_ID_INVALID',
  'SESSION_ENDED',
  'SESSION_COMMITTED',
  'CSRF_TOKEN_INVALID',
  'ORIGIN_MISMATCH',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'TOO_MANY_SESSIONS',
  'FLOW_STEP_OUT_OF_ORDER',
  'FLOW_STEP_UNKNOWN',
  'FLOW_COMPLETING',
  'FLOW_RUN_NOT_CURRENT',
  'FLOW_RUN_CHANGED',
  'STORE_URL_INVALID',
  'SESSION_BUSY',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * True for any Tether error, also one from another copy of the package. Never throws: a value whose
 * properties throw when read (a revoked Proxy) is not one.
 */
export function isTetherError(err: unknown): err is TetherError {
  try {
    return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
      && typeof (err as { status?: unknown }).status === 'number' && err instanceof Error;
  } catch {
    return false;
  }
}
