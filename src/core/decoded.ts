/**
 * Decoded sessions, shared between the requests of one session: the codec runs once per stored
 * version instead of once per request, and each request works on its own view of the shared data.
 *
 * An entry is `store key → { text, envelope }` and is used only when the stored text is exactly the
 * text it was decoded from, so it can never hand out data other than what the store holds. Shared
 * envelopes are never changed: with the JSON codec, whose output is plain JSON values, a request's
 * data is a copy-on-write draft over them (draft.ts), which knows whether it was changed; a custom
 * codec decodes again per request, since its values may be class instances a generic copy would not
 * rebuild, and its data is compared by value at commit. A request that never looks at its session
 * pays for neither.
 * The bound is the total length of the texts held (large sessions are not kept), oldest entry first;
 * the decoded objects take a few times that in heap, and the texts of their parts that writes found
 * unchanged (kept to write them again, see `jsonExact`) at most as much again.
 * A caller may hold on to the entry it was handed (a verified cookie does: DecodedHolder) and try it
 * before the lookup by key; a dropped entry is emptied, so a holder never serves or keeps it.
 * @module
 */
import rfdc from 'rfdc';
import { dequal } from 'dequal';
import type { Envelope, SessionCodec } from './codec.js';
import type { SessionData } from './session.js';
import { draftParts } from './draft.js';
import { decimal } from './decimal.js';
import { OldestFirst } from './oldest-first.js';

/** Total characters of stored text the cache holds (decoded objects take a few times that in heap). */
export const DECODED_CACHE_MAX_CHARS = 4 * 1024 * 1024;
/** Texts longer than this are decoded per request and not kept. */
export const DECODED_CACHE_MAX_TEXT = 16 * 1024;

/** Deep-copies plain data (a draft included): `session.snapshot()`. */
export const copyData = rfdc({ proto: false, circles: false });

/**
 * True when `data` holds the same values as `loaded`, so writing it would store nothing new: for a
 * draft, nothing was changed through it; otherwise deep, by value, constructors compared. False is not
 * proof of a change: the caller then encodes and compares the text.
 */
export function sameData(data: SessionData, loaded: SessionData): boolean {
  const parts = draftParts(data);
  return parts !== undefined ? parts.copy === null : dequal(data, loaded);
}

/** A copy of JSON-exact data and its JSON text (see jsonExact). */
export interface ExactJson<V> {
  value: V;
  /** What `JSON.stringify(value)` returns. */
  text: string;
}

/**
 * A copy of `value` if it is exactly what a JSON round trip gives back (plain objects and arrays,
 * strings, finite numbers, booleans, null), with its JSON text, else undefined: anything JSON would
 * drop or change (a Date, undefined, NaN, a class instance, a hole in an array, a prototype key) is
 * refused, so a copy taken is always equal to the JSON codec's decoding of the text.
 *
 * The copy and the text are built in one walk. What a draft still shares with its original, which
 * nothing ever changes, is shared by the copy too, and written out from the text its object had the
 * last time it was written (kept by object, see `fragment`): encoding costs in proportion to what
 * changed, not to the whole session.
 */
export function jsonExact<V>(value: V): ExactJson<V> | undefined {
  const out = exact(value, 0);
  return out === REFUSED ? undefined : { value: out as V, text };
}

const REFUSED = Symbol('refused');
/** Deeper than this is not worth checking: such data is decoded again instead. */
const MAX_DEPTH = 64;
/** The JSON text of the value `exact` (or `copyExact`) returned last: read it before the next call. */
let text = '';

/**
 * JSON texts of objects that are never changed: decoded session data, and the copies `jsonExact` makes
 * (each becomes the original of the session's next request). Kept from the first write that finds the
 * object unchanged, for as long as the object lives.
 */
const fragments = new WeakMap<object, string>();

/**
 * Object keys as JSON with the colon after them, for the few keys sessions use again and again: the
 * first 4,096 names of at most 32 characters are kept (names, never values), for the process's life.
 */
const keyTexts = new Map<string, string>();
const KEY_TEXTS_MAX = 4_096;
const KEY_TEXT_MAX_LENGTH = 32;

function keyText(k: string): string {
  let t = keyTexts.get(k);
  if (t === undefined) {
    t = `${JSON.stringify(k)}:`;
    if (k.length <= KEY_TEXT_MAX_LENGTH && keyTexts.size < KEY_TEXTS_MAX) keyTexts.set(k, t);
  }
  return t;
}

function fragment(o: object): string {
  let t = fragments.get(o);
  if (t === undefined) {
    t = JSON.stringify(o);
    fragments.set(o, t);
  }
  return t;
}

function exact(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case 'string':
      text = JSON.stringify(v);
      return v;
    case 'number':
      // A finite number's JSON is its string form; -0 is written "0", which decodes to 0, so the copy holds 0.
      if (!Number.isFinite(v)) return REFUSED;
      text = decimal(v);
      return v === 0 ? 0 : v;
    case 'boolean':
      text = v ? 'true' : 'false';
      return v;
    case 'object':
      break;
    default:
      return REFUSED;
  }
  if (v === null) {
    text = 'null';
    return v;
  }
  if (depth > MAX_DEPTH) return REFUSED;
  // A draft's original is decoded JSON that nothing changes: it is shared as it is. Of a changed draft
  // only the copy is walked, and its entries still shared with the original are shared too.
  const parts = draftParts(v);
  if (parts !== undefined) {
    if (parts.copy === null) {
      text = fragment(parts.base);
      return parts.base;
    }
    return copyExact(parts.copy, parts.base, depth);
  }
  return copyExact(v, undefined, depth);
}

/** Whether `e`, an entry of a draft's copy, is still the original's own object at the same place. */
function shared(e: unknown, original: unknown): e is object {
  return e === original && typeof e === 'object' && e !== null;
}

function copyExact(v: object, base: object | undefined, depth: number): unknown {
  if (Array.isArray(v)) {
    const from = base as unknown[] | undefined;
    const out = new Array<unknown>(v.length);
    let t = '[';
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) return REFUSED;
      const e: unknown = v[i];
      let c: unknown;
      if (from !== undefined && shared(e, from[i])) {
        c = e;
        text = fragment(e);
      } else {
        c = exact(e, depth + 1);
        if (c === REFUSED) return REFUSED;
      }
      t += i === 0 ? text : `,${text}`;
      out[i] = c;
    }
    text = `${t}]`;
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return REFUSED;
  const from = base as Record<string, unknown> | undefined;
  const out: Record<string, unknown> = {};
  let t = '{';
  for (const k in v) {
    if (k === '__proto__' || k === 'constructor' || k === 'toJSON') return REFUSED;
    const e = (v as Record<string, unknown>)[k];
    let c: unknown;
    if (from !== undefined && shared(e, from[k]) && Object.hasOwn(from, k)) {
      c = e;
      text = fragment(e);
    } else {
      c = exact(e, depth + 1);
      if (c === REFUSED) return REFUSED;
    }
    t += `${t.length === 1 ? '' : ','}${keyText(k)}${text}`;
    out[k] = c;
  }
  text = `${t}}`;
  return out;
}

/**
 * One kept decoding: `env` is what `text` decodes to. A dropped entry forgets both (text undefined), so
 * a holder that still points at it never matches and keeps nothing alive.
 */
export interface DecodedEntry {
  text: string | undefined;
  env: Envelope | undefined;
}

/**
 * Where a caller remembers the entry it was last handed (a verified cookie's): the next request of the
 * same session finds its decoding there, without a lookup by key, while the stored text is unchanged.
 */
export interface DecodedHolder {
  decoded: DecodedEntry | undefined;
}

export class DecodedCache {
  readonly #map = new Map<string, DecodedEntry>();
  readonly #oldest = new OldestFirst<string, DecodedEntry>();
  readonly #maxChars: number;
  #chars = 0;

  constructor(maxChars = DECODED_CACHE_MAX_CHARS) {
    this.#maxChars = maxChars;
  }

  get size(): number {
    return this.#map.size;
  }

  /**
   * The shared envelope decoded from exactly `text`, decoding (and keeping) it when needed. Never mutate
   * it. With `holder`, the entry it holds is tried first, and it is then pointed at the entry kept.
   * `codec.decode` is called as a method: an app's codec may be a class whose methods use `this`.
   */
  envelope(key: string, text: string, codec: Pick<SessionCodec, 'decode'>, holder?: DecodedHolder): Envelope {
    const held = holder?.decoded;
    if (held !== undefined && held.text === text) return held.env!;
    let hit = this.#map.get(key);
    if (hit === undefined || hit.text !== text) {
      const env = codec.decode(text);
      if (hit !== undefined) this.#drop(key, hit);
      hit = this.#keep(key, text, env);
      if (hit === undefined) {
        if (holder !== undefined) holder.decoded = undefined;
        return env;
      }
    }
    if (holder !== undefined) holder.decoded = hit;
    return hit.env!;
  }

  #keep(key: string, text: string, env: Envelope): DecodedEntry | undefined {
    if (text.length > DECODED_CACHE_MAX_TEXT || this.#maxChars === 0) return undefined;
    this.#fit(text.length);
    const entry: DecodedEntry = { text, env };
    this.#map.set(key, entry);
    this.#chars += text.length;
    return entry;
  }

  /** Drops the oldest entries until `more` characters fit the bound. */
  #fit(more: number): void {
    while (this.#chars + more > this.#maxChars && this.#map.size > 0) {
      this.#release(this.#oldest.shift(this.#map)![1]);
    }
  }

  /**
   * Keeps `env` as the decoding of `text` without decoding it: for the text a request has just written
   * from data it holds. The caller guarantees that decoding `text` would give `env` (jsonExact). A key
   * held already has its entry updated where it stands (the entries leave oldest first, as reads leave
   * them): a delete and an insert would leave a hole in the Map on every write. A holder of the entry
   * then sees the new text with its decoding.
   */
  prime(key: string, text: string, env: Envelope): void {
    const hit = this.#map.get(key);
    if (hit === undefined) {
      this.#keep(key, text, env);
    } else if (text.length > DECODED_CACHE_MAX_TEXT) {
      this.#drop(key, hit);
    } else {
      this.#chars += text.length - hit.text!.length;
      hit.text = text;
      hit.env = env;
      // Over the bound by the growth: the oldest go, this entry too if it is the oldest.
      this.#fit(0);
    }
  }

  /** Forgets a session (destroyed, regenerated): its decoded data should not outlive it here. */
  forget(key: string): void {
    const hit = this.#map.get(key);
    if (hit !== undefined) this.#drop(key, hit);
  }

  #drop(key: string, entry: DecodedEntry): void {
    this.#map.delete(key);
    this.#release(entry);
  }

  /** Empties an entry that has left the Map, so a holder still pointing at it matches nothing. */
  #release(entry: DecodedEntry): void {
    this.#chars -= entry.text!.length;
    entry.text = undefined;
    entry.env = undefined;
  }
}
