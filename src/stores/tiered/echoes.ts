/**
 * The stamps of TieredStore's own acknowledged (or in-flight) writes whose change reports have not come back yet.
 *
 * A shared store's feed reports every write, this tier's included, and may deliver the report well after
 * the write was acknowledged (pub/sub and LISTEN run on their own connection), even after a later write
 * of the same key. A report stamped with one of these states is that write's echo: it says nothing the
 * tier does not know (see SessionStore.subscribe), so the tier ignores it instead of dropping its copy.
 * Bounded: an echo that never comes (a store publishing nothing, a touch that hit a newer version) is
 * pushed out by later ones, and an echo forgotten too early only costs an invalidation, as before stamps.
 * A key with none awaited keeps its (empty) entry for its next write (kept-map.ts).
 * @module
 */
import { KeptMap } from '../../core/kept-map.js';

/** Echoes awaited per key; older ones are dropped first. */
const MAX_PER_KEY = 8;
/** Keys with awaited echoes; past this the whole set is dropped (a feed that stopped echoing). */
const MAX_KEYS = 10_000;
/** Keys with none awaited kept at most (as many as the tier keeps idle generations of). */
const IDLE_KEYS = 1024;

export class Echoes {
  readonly #byKey = new KeptMap<string, string[]>(IDLE_KEYS, (stamps) => stamps.length === 0);

  /** A write of `key` that will leave `stamp` is about to be sent. */
  expect(key: string, stamp: string): void {
    let stamps = this.#byKey.get(key);
    if (!stamps) {
      if (this.#byKey.size - this.#byKey.idle >= MAX_KEYS) this.#byKey.clear();
      this.#byKey.set(key, (stamps = []));
    } else if (stamps.length === 0) {
      this.#byKey.resume();
    }
    stamps.push(stamp);
    if (stamps.length > MAX_PER_KEY) stamps.shift();
  }

  /** The write failed or changed nothing: no report of it will come. */
  forget(key: string, stamp: string): void {
    this.take(key, stamp);
  }

  /** True when a report of `key` with `stamp` is an awaited echo; it is then no longer awaited. */
  take(key: string, stamp: string): boolean {
    const stamps = this.#byKey.get(key);
    const i = stamps ? stamps.indexOf(stamp) : -1;
    if (i < 0) return false;
    if (i === 0) stamps!.shift();
    else stamps!.splice(i, 1);
    if (stamps!.length === 0) this.#byKey.rest();
    return true;
  }

  clear(): void {
    this.#byKey.clear();
  }
}
