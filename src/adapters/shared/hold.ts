/**
 * Holding a response until its session is committed: the first writeHead/write/end/flushHeaders is
 * deferred until `commit()` settles (at once when it answers without a promise); then the Set-Cookie
 * headers are added and the deferred calls replayed in order, or, if the commit failed, the response
 * becomes the error instead (the socket is closed if the head was somehow out already).
 *
 * Once the handler's `end` is held, the response it describes is final. Until the commit settles the
 * head is not out, so `res.headersSent` is still false and an error path that runs meanwhile (a handler
 * that throws after answering, then the adapter's or the framework's error handler) takes the response
 * for unanswered: it changes the status and headers and calls `end` again. Those later calls are
 * dropped, and the status and headers the `end` was given with are put back before it is replayed.
 *
 * Two ways to intercept the four methods, one behaviour:
 * - `holdResponse` replaces them on the response object itself, for the length of the hold. Any
 *   node:http response can be held so.
 * - `holdOnPrototype` leaves the response object alone: the methods are defined once on a prototype
 *   every such response inherits from (`installHold`), and find the hold in a WeakMap. Frameworks that
 *   swap each response's prototype (Express) make per-response properties expensive: V8 charged about
 *   15 µs per Express request for them (bench/analysis.md item 24).
 * @module
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { appendSetCookie, sendError } from './http.js';

type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';
type Apply = (this: ServerResponse, ...args: unknown[]) => unknown;
type Methods = Record<Method, Apply>;
/** The commit: the Set-Cookie values to send, or a promise of them; what it throws or rejects is answered as an error. */
export type Commit = () => readonly string[] | Promise<readonly string[]>;
/** Where the hold reads, once the commit settled, the Clear-Site-Data value it sends with the cookies: the session. */
export interface Ending {
  readonly clearSiteData: string | null;
}
/**
 * For a response whose head went out before it ended (streaming): runs before that `end`, after the
 * head's commit. A rejection closes the socket instead of ending the response.
 */
export type LateEnd = () => Promise<void>;

const METHODS: readonly Method[] = ['writeHead', 'write', 'end', 'flushHeaders'];

class Hold {
  readonly #res: ServerResponse;
  readonly #commit: Commit;
  readonly #late: LateEnd | undefined;
  readonly #ending: Ending | undefined;
  /** Where a call goes once released: the methods the interception stands in front of. */
  readonly #next: Methods;
  /** Called once the calls go straight through again (removes the interception). */
  readonly #release: (res: ServerResponse) => void;
  /** Method names and argument lists, in call order. */
  readonly #queue: Array<Method | unknown[]> = [];
  #started = false;
  /** Committed, its head out, its `end` still to come through `late`. */
  #awaitingEnd = false;
  /** The handler's `end` has come: whatever is called after it is dropped. */
  #ended = false;
  /** The status and headers as they were when `end` came, taken only when the commit was still pending then. */
  #final: Final | undefined;
  /** The commit has answered (the calls were replayed, or the error sent). */
  #settled = false;
  /** Cut off (see `abort`): once the commit settles, the connection is closed instead of answered. */
  #aborted = false;

  constructor(res: ServerResponse, commit: Commit, late: LateEnd | undefined, ending: Ending | undefined, next: Methods, release: (res: ServerResponse) => void) {
    this.#res = res;
    this.#commit = commit;
    this.#late = late;
    this.#ending = ending;
    this.#next = next;
    this.#release = release;
  }

  /** Whether the handler has ended the response, though its `end` may still be held. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Whether the handler has begun its response (a head or body call came), held or not. */
  get begun(): boolean {
    return this.#started;
  }

  /**
   * The handler failed after beginning its response and before ending it: what it wrote cannot become
   * an error response, so the connection is closed, once the commit that its first call began has
   * settled (at once if it has), and nothing more of the response goes out.
   */
  abort(): void {
    this.#aborted = true;
    if (this.#settled) this.#res.destroy();
  }

  call(m: Method, args: unknown[]): unknown {
    const res = this.#res;
    if (this.#ended) return heldResult(m, res);
    if (this.#awaitingEnd) {
      if (m !== 'end') return this.#next[m].apply(res, args);
      this.#ended = true;
      this.#awaitingEnd = false;
      this.#release(res);
      this.#late!().then(() => this.#next.end.apply(res, args), (err: unknown) => res.destroy(err instanceof Error ? err : undefined));
      return res;
    }
    this.#queue.push(m, args);
    if (m === 'end') this.#ended = true;
    if (!this.#started) {
      this.#started = true;
      let cookies: readonly string[] | Promise<readonly string[]>;
      try {
        cookies = this.#commit();
      } catch (err) {
        this.#failed(err);
        return heldResult(m, res);
      }
      if (cookies instanceof Promise) {
        if (m === 'end') this.#final = finalOf(res);
        cookies.then((c) => this.#committed(c), (err: unknown) => this.#failed(err));
      } else {
        this.#committed(cookies);
      }
    } else if (m === 'end') {
      // Still held after the first call, so the commit is pending: what runs until it settles must not
      // change the response this `end` completes. A synchronous commit replays at once and needs none.
      this.#final = finalOf(res);
    }
    return heldResult(m, res);
  }

  #committed(cookies: readonly string[]): void {
    const res = this.#res;
    const q = this.#queue;
    this.#settled = true;
    if (this.#aborted) {
      this.#release(res);
      res.destroy();
      return;
    }
    this.#awaitingEnd = this.#late !== undefined && !q.includes('end');
    if (!this.#awaitingEnd) this.#release(res);
    if (this.#final !== undefined) putBack(res, this.#final);
    // Node gives the headers passed to writeHead precedence over those set before: set them first, as
    // writeHead would, so that the session's cookies are added to the handler's and its no-store wins.
    // Only a first call can be a writeHead that sends: any after a write, an end or a flush would throw.
    if (q[0] === 'writeHead') q[1] = applyHead(res, q[1] as unknown[]);
    appendSetCookie(res, cookies, this.#ending?.clearSiteData);
    for (let i = 0; i < q.length; i += 2) this.#next[q[i] as Method].apply(res, q[i + 1] as unknown[]);
  }

  #failed(err: unknown): void {
    const res = this.#res;
    this.#settled = true;
    this.#release(res);
    if (this.#aborted) {
      res.destroy();
      return;
    }
    sendError(res, err, (chunk) => this.#next.end.call(res, chunk));
  }
}

/** A response's status and headers (by lower-case name, as `getHeaders` gives them). */
interface Final {
  statusCode: number;
  statusMessage: string | undefined;
  headers: OutgoingHttpHeaders;
}

/**
 * Taken when a held `end` comes while the commit is pending: a copy, since error paths change the
 * response in place. Every write over a store that answers by promise takes one, so it is one call.
 */
function finalOf(res: ServerResponse): Final {
  // statusMessage is undefined until writeHead sets it; the type says string.
  const headers = res.getHeaders();
  // getHeaders copies only the top level: appendHeader pushes onto the response's own arrays.
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (Array.isArray(v)) headers[name] = v.slice();
  }
  return { statusCode: res.statusCode, statusMessage: res.statusMessage, headers };
}

/**
 * Makes the response what it was when its `end` came, before that `end` is replayed. Almost always
 * nothing changed it, and then nothing is touched: rebuilding the headers of every such response cost
 * Express ≈ 13 µs per write (alternating runs of the bench). Names put back are lower-case, which
 * HTTP does not tell apart.
 */
function putBack(res: ServerResponse, final: Final): void {
  if (res.statusCode === final.statusCode && res.statusMessage === final.statusMessage && sameHeaders(res, final.headers)) return;
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  for (const name of Object.keys(final.headers)) res.setHeader(name, final.headers[name]!);
  res.statusCode = final.statusCode;
  (res as { statusMessage: string | undefined }).statusMessage = final.statusMessage;
}

function sameHeaders(res: ServerResponse, headers: OutgoingHttpHeaders): boolean {
  const names = Object.keys(headers);
  if (res.getHeaderNames().length !== names.length) return false;
  for (const name of names) {
    const now = res.getHeader(name);
    const then = headers[name];
    if (now === then) continue;
    if (!Array.isArray(now) || !Array.isArray(then) || now.length !== then.length || now.some((v, i) => v !== then[i])) return false;
  }
  return true;
}

/**
 * Sets the headers a held `writeHead(status[, message][, headers])` was given on the response, as Node's
 * writeHead does when headers were set before it: an object's by `setHeader`, an array of name and value
 * pairs by removing each name and then appending every pair. Returns the arguments without the headers.
 */
function applyHead(res: ServerResponse, args: unknown[]): unknown[] {
  const withMessage = typeof args[1] === 'string';
  const headers = withMessage ? args[2] : args[1];
  if (headers === undefined || headers === null) return args;
  if (Array.isArray(headers)) {
    // An odd-length list is left to writeHead, which refuses it.
    if (headers.length % 2 !== 0) return args;
    for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i] as string);
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]) res.appendHeader(headers[i] as string, headers[i + 1] as string | readonly string[]);
    }
  } else if (typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) {
      if (name) res.setHeader(name, value as number | string | readonly string[]);
    }
  } else {
    return args;
  }
  return withMessage ? [args[0], args[1]] : [args[0]];
}

/** What a held call returns, as the real method would: `write` true (no back-pressure yet), the others the response. */
function heldResult(m: Method, res: ServerResponse): unknown {
  return m === 'write' ? true : res;
}

/** A held response, as its holder sees it. */
export interface HeldResponse {
  /** Whether the handler has ended the response, though its `end` may still be held. */
  readonly ended: boolean;
  /** Whether the handler has begun its response (a head or body call came), held or not. */
  readonly begun: boolean;
  /** Closes the connection of a response begun and not ended, once its commit settles (see Hold.abort). */
  abort(): void;
}

/** Holds `res` by replacing its four methods on the object itself until the hold ends. */
export function holdResponse(res: ServerResponse, commit: Commit, late?: LateEnd, ending?: Ending): HeldResponse {
  const r = res as unknown as Methods;
  const original: Methods = { writeHead: r.writeHead, write: r.write, end: r.end, flushHeaders: r.flushHeaders };
  const restore = (): void => {
    r.writeHead = original.writeHead;
    r.write = original.write;
    r.end = original.end;
    r.flushHeaders = original.flushHeaders;
  };
  const hold = new Hold(res, commit, late, ending, original, restore);
  // One function literal for all four: with four different ones a node:http read cost ≈ 5 µs more
  // (≈ 24.6 against ≈ 19.8 µs of CPU per request, alternating runs of the bench server).
  r.writeHead = through('writeHead', hold);
  r.write = through('write', hold);
  r.end = through('end', hold);
  r.flushHeaders = through('flushHeaders', hold);
  return hold;
}

function through(m: Method, hold: Hold): Apply {
  return function (...args: unknown[]) {
    return hold.call(m, args);
  };
}

const HELD = new WeakMap<ServerResponse, Hold>();
const release = (res: ServerResponse): void => void HELD.delete(res);
/** Per prototype given to `installHold`: where released calls go (the methods it stands in front of). */
const INSTALLED = new WeakMap<object, Methods>();

/**
 * Defines the four methods on `proto` (once): a response inheriting from it that `holdOnPrototype`
 * holds waits; any other goes straight on to the method `proto` had before, its own or, looked up at
 * each call, the one further up (so a later patch there, an APM's, is honoured). Call it before any
 * request: a middleware that wraps `res.end` captures whatever `res.end` resolves to when it runs, and
 * that must already be the holding method.
 */
export function installHold(proto: object): void {
  if (INSTALLED.has(proto)) return;
  const above = Object.getPrototypeOf(proto) as Methods;
  const next = {} as Methods;
  for (const m of METHODS) {
    const own = Object.getOwnPropertyDescriptor(proto, m)?.value as Apply | undefined;
    next[m] = typeof own === 'function' ? own : function (this: ServerResponse, ...args: unknown[]) {
      return above[m].apply(this, args);
    };
  }
  INSTALLED.set(proto, next);
  for (const m of METHODS) {
    Object.defineProperty(proto, m, {
      configurable: true,
      writable: true,
      value: function (this: ServerResponse, ...args: unknown[]): unknown {
        const h = HELD.get(this);
        return h === undefined ? next[m].apply(this, args) : h.call(m, args);
      },
    });
  }
}

/** The hold `holdOnPrototype` keeps `res` in while its commit is pending; undefined once released, or if not so held. */
export function heldOnPrototype(res: ServerResponse): HeldResponse | undefined {
  return HELD.get(res);
}

/**
 * Holds `res` through the methods `installHold(proto)` defined, leaving the response object as it is;
 * a response that does not inherit from `proto`, or is held already, is held with `holdResponse`.
 */
export function holdOnPrototype(proto: object, res: ServerResponse, commit: Commit, late?: LateEnd, ending?: Ending): void {
  const next = INSTALLED.get(proto);
  // Already held (a second session middleware on the same request): this hold goes in front of that
  // one, on the object, so both commit, the later one first, as two per-response holds would.
  if (next === undefined || HELD.has(res) || !Object.prototype.isPrototypeOf.call(proto, res)) {
    holdResponse(res, commit, late, ending);
    return;
  }
  // Released calls go on below the holding methods: an own override on the response (compression's
  // `end`, say) already ran on its way to them.
  HELD.set(res, new Hold(res, commit, late, ending, next, release));
}
