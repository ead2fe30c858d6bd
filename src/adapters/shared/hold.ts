/**
 * Holding a response until its session is committed: the first writeHead/write/end/flushHeaders is
 * deferred until `commit()` settles (at once when it answers without a promise); then the Set-Cookie
 * headers are added and the deferred calls replayed in order, or, if the commit failed, the response
 * becomes the error instead (the socket is closed if the head was somehow out already).
 *
 * Once the handler has begun its response, `res.headersSent` reads true, as Node's would (each of the
 * four sends or fixes the head), though the head is held: an error path that runs meanwhile (a handler
 * that throws after answering or mid-body, then the framework's error handling) takes the response for
 * answered, as it would without the hold, and closes the connection instead of answering (Express's
 * final handler destroys `req.socket`). Such a close waits for the commit: what the handler wrote goes
 * out first, then the connection is closed (see `Hold.abort`). Once the handler's `end` is held, the
 * response it describes is final: an error handler that answers all the same has its calls dropped, and
 * the status and headers the `end` was given with are put back before it is replayed.
 *
 * A call the hold does not make (dropped, or replaced by the error answer of a failed commit) still has
 * its callback called, once the response is done: without an error when it finished, with Node's
 * ERR_STREAM_PREMATURE_CLOSE when the connection closed first. A handler awaiting `res.end(data, cb)`
 * goes on either way.
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
import { finished } from 'node:stream';
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
  /** Not released yet: the calls still come to this hold. */
  #holding = true;
  /** Cut off (see `abort`): once the commit settles and the held calls are made, the connection is closed. */
  #aborted = false;
  /** The error the close was asked with (a socket's `destroy(err)` put off by `#guard`). */
  #abortError: Error | undefined;
  /** Gives the socket its own `destroy` back; set while `#guard` puts a close off. */
  #unguard: (() => void) | undefined;

  /** The hold on the object that this one went in front of (two session middlewares on one request). */
  readonly under: Hold | undefined;

  constructor(res: ServerResponse, commit: Commit, late: LateEnd | undefined, ending: Ending | undefined, next: Methods, release: (res: ServerResponse) => void, under?: Hold) {
    this.#res = res;
    this.under = under;
    this.#commit = commit;
    this.#late = late;
    this.#ending = ending;
    this.#next = next;
    this.#release = release;
  }

  /** Whether the calls still come to this hold (not released yet). */
  get holding(): boolean {
    return this.#holding;
  }

  #letGo(): void {
    this.#holding = false;
    this.#release(this.#res);
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
   * What `res.headersSent` reads while the response is held: true once the handler has begun it. An
   * error path asks it to learn whether it may still answer; told no, it closes the connection, which
   * must not cut off a response held for its commit: until the commit settles, the socket's `destroy`
   * is put off (`#guard`).
   */
  sent(): boolean {
    if (!this.#started) return false;
    if (!this.#settled) this.#guard();
    return true;
  }

  /**
   * The connection is to be closed (the handler failed after beginning its response; an error path
   * destroyed the socket): once the commit that its first call began has settled (at once if it has),
   * what the handler had written goes out, then the connection is closed, as it would be without the
   * hold. Calls made after this are dropped, and the response keeps the status and headers it has now.
   * A failed commit is answered as an error first, since nothing was sent.
   */
  abort(err?: Error): void {
    if (this.#settled) {
      this.#res.destroy(err);
      return;
    }
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortError = err;
    this.#final ??= finalOf(this.#res);
  }

  /**
   * Puts off closes of the connection until the commit settles: the socket's `destroy`, which an error
   * path calls (Express's final handler: `req.socket.destroy()`), becomes `abort` meanwhile. Only on
   * the error path: a response is guarded once something asks whether its head is out.
   */
  #guard(): void {
    const socket = this.#res.socket;
    if (this.#unguard !== undefined || socket === null || socket.destroyed) return;
    const own = Object.getOwnPropertyDescriptor(socket, 'destroy');
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with `this` below
    const destroy = socket.destroy;
    let guarding = true;
    const hold = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the socket's method is called with the socket as `this`
    socket.destroy = function (this: typeof socket, err?: Error) {
      // A copy left in place by another hold (two holds on one response) passes the call on once this one settled.
      if (!guarding) return destroy.call(this, err);
      hold.abort(err);
      return this;
    };
    this.#unguard = () => {
      guarding = false;
      if (own !== undefined) Object.defineProperty(socket, 'destroy', own);
      else delete (socket as { destroy?: unknown }).destroy;
    };
  }

  /** Ends the guard, if any; returns the connection to close when the response was aborted. */
  #settle(): { destroy(err?: Error): unknown } {
    this.#settled = true;
    this.#unguard?.();
    return this.#res.socket ?? this.#res;
  }

  /**
   * A call that is not made: its callback (a `write`'s or an `end`'s last argument) is called once the
   * response is done, as Node calls one on a stream that finished or was destroyed.
   */
  #dropped(args: unknown[]): void {
    const cb = args[args.length - 1];
    if (typeof cb === 'function') finished(this.#res, (err) => (cb as (err?: Error) => void)(err ?? undefined));
  }

  call(m: Method, args: unknown[]): unknown {
    const res = this.#res;
    if (this.#ended || this.#aborted) {
      this.#dropped(args);
      return heldResult(m, res);
    }
    if (this.#awaitingEnd) {
      if (m !== 'end') return this.#next[m].apply(res, args);
      this.#ended = true;
      this.#awaitingEnd = false;
      this.#letGo();
      this.#late!().then(() => this.#next.end.apply(res, args), (err: unknown) => {
        this.#dropped(args);
        res.destroy(err instanceof Error ? err : undefined);
      });
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
    const connection = this.#settle();
    const aborted = this.#aborted;
    this.#awaitingEnd = this.#late !== undefined && !aborted && !q.includes('end');
    if (!this.#awaitingEnd) this.#letGo();
    if (this.#final !== undefined) putBack(res, this.#final);
    // Node gives the headers passed to writeHead precedence over those set before: set them first, as
    // writeHead would, so that the session's cookies are added to the handler's and its no-store wins.
    // Only a first call can be a writeHead that sends: any after a write, an end or a flush would throw.
    if (q[0] === 'writeHead') q[1] = applyHead(res, q[1] as unknown[]);
    appendSetCookie(res, cookies, this.#ending?.clearSiteData);
    for (let i = 0; i < q.length; i += 2) this.#next[q[i] as Method].apply(res, q[i + 1] as unknown[]);
    if (aborted) this.#close(connection);
  }

  #failed(err: unknown): void {
    const res = this.#res;
    const q = this.#queue;
    const connection = this.#settle();
    this.#letGo();
    for (let i = 1; i < q.length; i += 2) this.#dropped(q[i] as unknown[]);
    // Nothing was sent: the error is answered, also on a response whose connection is then closed.
    sendError(res, err, (chunk) => this.#next.end.call(res, chunk));
    if (this.#aborted) this.#close(connection);
  }

  /**
   * Closes the connection after what was just written: Node corks the socket for a response's first
   * write until the next tick, and a destroy before that would drop it.
   */
  #close(connection: { destroy(err?: Error): unknown }): void {
    const err = this.#abortError;
    process.nextTick(() => connection.destroy(err));
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
  /** Closes the connection of a response begun and not ended, once its commit settles and what was written went out (see Hold.abort). */
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
  const hold = new Hold(res, commit, late, ending, original, restore, (res as HeldOnObject)[HOLD]);
  // One function literal for all four: with four different ones a node:http read cost ≈ 5 µs more
  // (≈ 24.6 against ≈ 19.8 µs of CPU per request, alternating runs of the bench server).
  r.writeHead = through('writeHead', hold);
  r.write = through('write', hold);
  r.end = through('end', hold);
  r.flushHeaders = through('flushHeaders', hold);
  // `headersSent`: one getter for every response, which finds the hold in a property of the response.
  // A WeakMap entry per response cost ≈ 1.4 µs a hold (its garbage collection, in a loop of 20,000
  // holds), a getter closure per response a hidden class of its own. Both stay once released, the
  // getter then only passing on.
  const held = res as HeldOnObject;
  if (held[HOLD] === undefined) Object.defineProperty(res, 'headersSent', { configurable: true, get: ownHeadersSent });
  held[HOLD] = hold;
  return hold;
}

/** The latest hold `holdResponse` put on a response; a hold it replaced is the new one's `under`. */
const HOLD = Symbol('tether.hold');
type HeldOnObject = ServerResponse & { [HOLD]?: Hold };

/** `headersSent` of a response held on the object: true while a hold of it has begun, else what it inherits. */
function ownHeadersSent(this: HeldOnObject): boolean {
  for (let h = this[HOLD]; h !== undefined; h = h.under) if (h.holding && h.sent()) return true;
  return Reflect.get(Object.getPrototypeOf(this) as object, 'headersSent', this) as boolean;
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
  // eslint-disable-next-line @typescript-eslint/unbound-method -- a getter, called with the response as `this`
  const ownSent = Object.getOwnPropertyDescriptor(proto, 'headersSent')?.get;
  // Read only by error paths and such (Express's final handler, an app's error handler): a held
  // response the handler has begun reads true, as Node's would; any other asks what proto had.
  Object.defineProperty(proto, 'headersSent', {
    configurable: true,
    get(this: ServerResponse): boolean {
      const h = HELD.get(this);
      if (h !== undefined && h.sent()) return true;
      return ownSent !== undefined ? ownSent.call(this) as boolean : Reflect.get(above, 'headersSent', this) as boolean;
    },
  });
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
