/**
 * Decoded sessions, shared between the requests of one session: the codec runs once per stored
 * version instead of once per request, each request works on its own copy, and whether a request
 * changed anything is answered by comparing that copy with the shared one.
 *
 * An entry is `store key → { text, envelope }` and is used only when the stored text is exactly the
 * text it was decoded from, so it can never hand out data other than what the store holds. Shared
 * envelopes are never changed: a request's data is a deep copy made the first time the request
 * touches it (rfdc for the JSON codec, whose output is plain JSON values; a custom codec decodes
 * again, since its values may be class instances a generic copy would not rebuild), so a request that
 * never looks at its session pays for no copy and no comparison.
 * The bound is the total length of the texts held (large sessions are not kept), oldest entry first.
 * @module
 */
import rfdc from 'rfdc';
import { dequal } from 'dequal';
import type { Envelope } from './codec.js';
import type { SessionData } from './session.js';

/** Total characters of stored text the cache holds (decoded objects take a few times that in heap). */
export const DECODED_CACHE_MAX_CHARS = 4 * 1024 * 1024;
/** Texts longer than this are decoded per request and not kept. */
export const DECODED_CACHE_MAX_TEXT = 16 * 1024;

/** Copies plain JSON values: what the JSON codec decodes to. */
export const copyData = rfdc({ proto: false, circles: false }) as <V>(value: V) => V;

/**
 * True when `data` holds the same values as `loaded` (deep, by value, constructors compared), so
 * writing it would store nothing new. False is not proof of a change: the caller then encodes and
 * compares the text.
 */
export function sameData(data: SessionData, loaded: SessionData): boolean {
  return dequal(data, loaded);
}

export class DecodedCache {
  readonly #map = new Map<string, { text: string; env: Envelope }>();
  readonly #maxChars: number;
  #chars = 0;

  constructor(maxChars = DECODED_CACHE_MAX_CHARS) {
    this.#maxChars = maxChars;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The shared envelope decoded from exactly `text`, decoding (and keeping) it when needed. Never mutate it. */
  envelope(key: string, text: string, decode: (text: string) => Envelope): Envelope {
    const hit = this.#map.get(key);
    if (hit !== undefined && hit.text === text) return hit.env;
    const env = decode(text);
    if (hit !== undefined) this.#drop(key, hit.text);
    if (text.length <= DECODED_CACHE_MAX_TEXT && this.#maxChars > 0) {
      while (this.#chars + text.length > this.#maxChars && this.#map.size > 0) {
        const [oldKey, old] = this.#map.entries().next().value!;
        this.#drop(oldKey, old.text);
      }
      this.#map.set(key, { text, env });
      this.#chars += text.length;
    }
    return env;
  }

  /** Forgets a session (destroyed, regenerated): its decoded data should not outlive it here. */
  forget(key: string): void {
    const hit = this.#map.get(key);
    if (hit !== undefined) this.#drop(key, hit.text);
  }

  #drop(key: string, text: string): void {
    this.#map.delete(key);
    this.#chars -= text.length;
  }
}
