/**
 * The session codec: what a store's `data` string holds. JSON by default, parsed without
 * prototype pollution (secure-json-parse drops `__proto__` and `constructor.prototype`).
 * @module
 */
import sjson from 'secure-json-parse';

/** What the engine keeps per session besides the user's data. */
export interface Envelope {
  /** The user's data bag. */
  d: Record<string, unknown>;
  /** The CSRF synchronizer token, when one was issued. */
  c?: string;
  /** The User-Agent the session was last seen with (`userAgentChange`), for session lists. */
  u?: string;
  /** 1 for a remembered session (`session.remember()`): its own timeouts and a persistent cookie. */
  r?: 1;
  /** When the owner last proved who they are (`login()`, `reauthenticated()`), in ms of the engine's clock. */
  a?: number;
  /** The network the session was last seen from (`addressChange`), e.g. `203.0.113.0/24`. */
  n?: string;
  /** When the session's current ID was issued, in ms of the engine's clock: kept under `renewal` only. */
  i?: number;
  /**
   * The session's handle once a renewal (`renewal`) or `reauthenticated()` replaced its ID: the handle
   * of the ID it had when it began (was created, signed in or regenerated), kept across those, so that
   * a session list, a log or an event names the same device before and after. Absent: the handle of the
   * ID it is stored under.
   */
  h?: string;
}

/**
 * Encodes and decodes a session's envelope. A custom codec must keep every field of the envelope, not
 * only `d`: a token (`c`), the user agent (`u`), the remembered flag (`r`), the authentication time
 * (`a`), the network (`n`), the ID's issue time (`i`) and the session's handle (`h`) it drops are lost:
 * a remembered session then ends at the engine's ordinary timeouts, `requireRecentAuth()` asks its user
 * to sign in again, `addressChange` has nothing to compare with, and under `renewal` a session older
 * than the interval gets a new ID at every request, and a new handle at each renewal.
 */
export interface SessionCodec {
  encode(envelope: Envelope): string;
  decode(text: string): Envelope;
  /**
   * True when `decode` gives what `jsonCodec.decode` gives for the envelope's JSON text (plain JSON
   * values, its fields checked alike), as `encryptedCodec` over the JSON codec does. The engine then
   * treats the data as it treats the JSON codec's: one decoding shared by the requests of a session,
   * each request's data a copy-on-write draft over it, a write's new text decoded by no one.
   */
  readonly json?: boolean;
  /**
   * How the engine stores its own JSON records besides sessions (user contexts, and the flows kept in
   * them): `encodeText` turns their JSON text into what is stored, and `decodeText` turns it back
   * (throwing when it cannot). A codec without them leaves those records JSON. `encryptedCodec`
   * encrypts them as it encrypts sessions.
   */
  encodeText?(json: string): string;
  decodeText?(stored: string): string;
}

/** Whether the engine may treat `codec`'s data as the JSON codec's (see SessionCodec.json). */
export function isJsonCodec(codec: SessionCodec): boolean {
  return codec === jsonCodec || codec.json === true;
}

export const jsonCodec: SessionCodec = {
  encode: (envelope) => JSON.stringify(envelope),
  decode: (text) => {
    const parsed = sjson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' }) as Partial<Envelope> | null;
    const d = parsed && typeof parsed.d === 'object' && parsed.d !== null && !Array.isArray(parsed.d) ? parsed.d : {};
    const out: Envelope = { d };
    if (typeof parsed?.c === 'string') out.c = parsed.c;
    if (typeof parsed?.u === 'string') out.u = parsed.u;
    if (parsed?.r === 1) out.r = 1;
    if (typeof parsed?.a === 'number' && Number.isFinite(parsed.a)) out.a = parsed.a;
    if (typeof parsed?.n === 'string') out.n = parsed.n;
    if (typeof parsed?.i === 'number' && Number.isFinite(parsed.i)) out.i = parsed.i;
    if (typeof parsed?.h === 'string') out.h = parsed.h;
    return out;
  },
};

/** What `jsonCodec.encode(env)` gives, from the JSON text of `env.d` already at hand. */
export function jsonEnvelope(dataText: string, env: Envelope): string {
  let text = `{"d":${dataText}`;
  if (env.c !== undefined) text += `,"c":${JSON.stringify(env.c)}`;
  if (env.u !== undefined) text += `,"u":${JSON.stringify(env.u)}`;
  if (env.r === 1) text += ',"r":1';
  if (env.a !== undefined) text += `,"a":${env.a}`;
  if (env.n !== undefined) text += `,"n":${JSON.stringify(env.n)}`;
  if (env.i !== undefined) text += `,"i":${env.i}`;
  if (env.h !== undefined) text += `,"h":${JSON.stringify(env.h)}`;
  return `${text}}`;
}

/**
 * Parses JSON the engine itself stored (user contexts): prototype keys are dropped rather than
 * refused, so one poisoned record cannot make a user's state unreadable for good.
 */
export function parseStoredJson(text: string): unknown {
  return sjson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' });
}

/** Parses untrusted JSON (request bodies): any prototype key is an error. */
export function parseJsonSafely(text: string): unknown {
  return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
}

/**
 * The UTF-8 length of `text` when it is over `max` bytes, else null. A UTF-16 code unit is at most 3
 * bytes of UTF-8, so a text that short is within the limit uncounted.
 */
export function bytesOver(text: string, max: number): number | null {
  if (text.length * 3 <= max) return null;
  const bytes = Buffer.byteLength(text);
  return bytes > max ? bytes : null;
}

/**
 * A warning given once by its holder (an engine, its user registry) when a codec fails on a record or
 * on session data. It names the error's type only: the codec's message may quote the record, and with
 * it user data.
 */
export class CodecFailureWarning {
  readonly #code: string;
  readonly #message: (kind: string) => string;
  #warned = false;

  constructor(code: string, message: (kind: string) => string) {
    this.#code = code;
    this.#message = message;
  }

  warn(err: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(this.#message(err instanceof Error ? err.name : typeof err), { code: this.#code });
  }
}
