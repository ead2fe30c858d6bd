/**
 * Picks the worker for a new connection: the worker the cluster's routing cookie names (see
 * `routeCookieName`) when that worker is ready, else by the session named in the first request's Cookie
 * header (rendezvous hash of the cookie's ID part, so a dead worker's sessions spread over the others and
 * come back when it returns), or round-robin when there is neither.
 *
 * The routing cookie is what keeps a session on its worker when its ID changes (a renewal, a login): a
 * hash of the new ID would mostly pick another worker, and a page's next connections would then write the
 * session from two processes at once, where a `set` that loses the race is refused 409 SESSION_CONFLICT.
 * The worker that sends a session cookie sends the routing cookie beside it (src/cluster/worker.ts).
 *
 * The primary never verifies the cookie's signature: a forged or stale cookie only chooses a worker,
 * and the worker checks everything. Correctness never depends on this choice, since every worker reads
 * the shared store.
 * @module
 */
import { createHash, createHmac } from 'node:crypto';

const CRLF = '\r\n';
/** IDs are 43 characters; anything much longer is not ours and is not worth hashing whole. */
const MAX_ID_CHARS = 256;

/** Offset of the blank line ending the head (`\r\n\r\n`), or -1. */
export function headEnd(bytes: Buffer): number {
  return bytes.indexOf('\r\n\r\n', 0, 'latin1');
}

/**
 * The name of the cookie by which the primary keeps a session on one worker across changes of its ID:
 * the session cookie's name with `-w` appended (a `__Host-` name keeps its prefix, and the attributes it
 * requires are the session cookie's own). Its value is the worker's slot number.
 */
export function routeCookieName(cookieName: string): string {
  return `${cookieName}-w`;
}

/** What the primary routes a connection by: the session's ID part and the slot the routing cookie names (1-based). */
export interface HeadRouting {
  id: string | null;
  slot: number | null;
}

/**
 * The ID part (before the last dot) of the first `name` cookie in the head's complete header lines, or null.
 * Same rule as the engine's parser: the first cookie of that exact name wins.
 */
export function sessionIdFromHead(bytes: Buffer, cookieName: string): string | null {
  const value = cookiesFromHead(bytes, [cookieName])[0]!;
  return value === null ? null : idPart(value);
}

/** The session's ID part and the worker slot the routing cookie names (a number from 1 to 9999, else null). */
export function routingFromHead(bytes: Buffer, cookieName: string): HeadRouting {
  const [session, route] = cookiesFromHead(bytes, [cookieName, routeCookieName(cookieName)]) as [string | null, string | null];
  return { id: session === null ? null : idPart(session), slot: route !== null && /^[1-9]\d{0,3}$/.test(route) ? Number(route) : null };
}

/** The value of the first cookie of each name in the head's complete Cookie lines (null where none). */
function cookiesFromHead(bytes: Buffer, names: readonly string[]): Array<string | null> {
  const found: Array<string | null> = names.map(() => null);
  let missing = names.length;
  const end = headEnd(bytes);
  const text = bytes.toString('latin1', 0, end === -1 ? bytes.length : end + 2);
  let pos = text.indexOf(CRLF);
  while (pos !== -1 && missing > 0) {
    const next = text.indexOf(CRLF, pos + 2);
    if (next === -1) break;
    const line = text.slice(pos + 2, next);
    pos = next;
    const colon = line.indexOf(':');
    if (colon !== 6 || line.slice(0, 6).toLowerCase() !== 'cookie') continue;
    for (let i = 0; i < names.length; i++) {
      if (found[i] !== null) continue;
      const value = cookieValue(line.slice(7), names[i]!);
      if (value !== null) {
        found[i] = value;
        missing--;
      }
    }
  }
  return found;
}

function cookieValue(header: string, name: string): string | null {
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    let v = pair.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v === '' ? null : v;
  }
  return null;
}

function idPart(value: string): string | null {
  const dot = value.lastIndexOf('.');
  const id = (dot > 0 ? value.slice(0, dot) : value).slice(0, MAX_ID_CHARS);
  return id === '' ? null : id;
}

/** murmur3's finaliser: a cheap, well-mixed 32-bit permutation. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class Router {
  readonly #key: string | undefined;
  #next = 0;

  /** `key` (optional) makes the session → worker mapping unpredictable to clients. */
  constructor(key?: string) {
    this.#key = key;
  }

  /** A stable 32-bit seed for a session ID. */
  seed(id: string): number {
    // As hex text: a digest to a Buffer costs a backing store per call, which the GC then sweeps.
    const hex = this.#key === undefined ? createHash('sha256').update(id).digest('hex') : createHmac('sha256', this.#key).update(id).digest('hex');
    return Number.parseInt(hex.slice(0, 8), 16);
  }

  /**
   * The slot to use among `ready` (slot numbers of workers taking connections), or undefined when none is.
   * With an ID: the slot with the highest score for it (rendezvous hashing); without: the next in turn.
   */
  pick(id: string | null, ready: readonly number[]): number | undefined {
    if (ready.length === 0) return undefined;
    if (id === null) {
      this.#next = (this.#next + 1) % 0x7fffffff;
      return ready[this.#next % ready.length];
    }
    const seed = this.seed(id);
    let best = ready[0]!;
    let bestScore = -1;
    for (const slot of ready) {
      const score = mix32(seed ^ Math.imul(slot + 1, 0x9e3779b1));
      if (score > bestScore) {
        bestScore = score;
        best = slot;
      }
    }
    return best;
  }
}
