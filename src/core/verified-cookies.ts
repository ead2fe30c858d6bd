/**
 * Session cookies whose signature was already verified: a returning session's requests skip the HMAC
 * and the base64url checks, paying only the hash of the ID that the store key needs anyway.
 *
 * What is kept is `signature → { store key, stale }`: no cookie value and no raw ID, so a heap dump of
 * the cache yields nothing that opens a session (a signature without its ID is useless, and the store
 * key is a one-way hash). A cookie is accepted from the cache only when its signature is remembered
 * and its ID hashes to the remembered key, i.e. it is the very value that verified; anything else goes
 * through the full, constant-time check. Only values that verified, or that the engine signed for a
 * session it regenerated or re-signed, are entered, so forged cookies cannot fill it, and neither can a
 * flood of new sessions (whose cookies mostly never return). The bound is a count, and the oldest entry
 * goes first.
 *
 * An entry also holds the decoded-session cache's entry its session was last read through
 * (decoded.ts, DecodedHolder) and the store's slot for its key (SessionStore.getLocal, where the
 * bundled stores leave the record's unpacked text): the session's next request finds both there,
 * each checked against what is stored now, without two more lookups by key in large Maps. It holds
 * nothing the caches do not: an entry either cache lets go is emptied.
 * @module
 */
import { hashId } from './ids.js';
import type { Signer } from './signer.js';
import type { DecodedHolder } from './decoded.js';
import type { LocalSlot } from './store.js';

export interface VerifiedCookie {
  id: string;
  /** The store key: SHA-256 of the ID. */
  key: string;
  /** A secret other than the first verified it: the cookie should be re-signed. */
  stale: boolean;
  /**
   * Kept with the remembered cookie for its session's next request: the decoding (DecodedCache.envelope)
   * and the store's slot (SessionStore.getLocal).
   */
  holder: DecodedHolder & LocalSlot;
}

interface Entry extends DecodedHolder, LocalSlot {
  key: string;
  stale: boolean;
}

/** Entries kept (about 150 bytes each). */
export const VERIFIED_COOKIES_MAX = 10_000;

/** The signature is HMAC-SHA256 in base64url (43 characters); IDs are at most 128 characters. */
const SIG_LENGTH = 43;
const MAX_ID_LENGTH = 128;

export class VerifiedCookies {
  readonly #signer: Signer;
  readonly #max: number;
  readonly #seen = new Map<string, Entry>();

  constructor(signer: Signer, max = VERIFIED_COOKIES_MAX) {
    this.#signer = signer;
    this.#max = max;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** The ID, store key and staleness of a correctly signed cookie value, else null. */
  verify(value: string): VerifiedCookie | null {
    const dot = value.lastIndexOf('.');
    // Cheap shape check first, so junk of any length is refused before anything is hashed.
    if (dot <= 0 || dot > MAX_ID_LENGTH || value.length - dot - 1 !== SIG_LENGTH) return null;
    const id = value.slice(0, dot);
    const signature = value.slice(dot + 1);
    const hit = this.#seen.get(signature);
    if (hit !== undefined) {
      const key = hashId(id);
      if (key === hit.key) return { id, key, stale: hit.stale, holder: hit };
    }
    const unsigned = this.#signer.unsign(value);
    if (!unsigned) return null;
    const entry: Entry = { key: hashId(unsigned.id), stale: unsigned.stale, decoded: undefined, local: undefined };
    this.#keep(signature, entry);
    return { id: unsigned.id, key: entry.key, stale: entry.stale, holder: entry };
  }

  /**
   * Signs `id` with the current secret and remembers the value as verified: a cookie the engine issues
   * (a regenerated or re-signed session) is recognised on its first return without the HMAC. `key` is
   * the ID's store key, which the caller has already computed.
   */
  sign(id: string, key: string): string {
    const value = this.#signer.sign(id);
    this.#keep(value.slice(value.lastIndexOf('.') + 1), { key, stale: false, decoded: undefined, local: undefined });
    return value;
  }

  #keep(signature: string, entry: Entry): void {
    if (this.#seen.size >= this.#max) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(signature, entry);
  }
}
