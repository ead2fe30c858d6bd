/**
 * Session cookies whose signature was already verified: a returning session's requests skip the HMAC
 * and the base64url checks, paying one SHA-256 of the cookie value in place of the one of the ID that
 * the store key would need.
 *
 * What is kept is `{ digest, store key, stale }`: the SHA-256 of the cookie value that verified and the
 * SHA-256 of its ID, no cookie value, no raw ID and no signature, so a heap dump of the cache yields
 * nothing that opens a session (both are one-way hashes). A cookie is accepted from the cache only
 * when the whole value hashes to the remembered digest, i.e. it is the very value that verified, ID and
 * signature alike; anything else goes through the full, constant-time check. Comparing digests, not the
 * signature itself, keeps the cache path timing-safe without a slower comparison: how much of a guess
 * matches a digest tells nothing about the signature (who holds an ID but not its cookie cannot steer
 * a SHA-256), and the one hash a hit costs replaces the hash of the ID the store key needed. Only
 * values that verified, or that the engine signed for a session it regenerated or re-signed, are
 * entered, so forged cookies cannot fill it, and neither can a flood of new sessions (whose cookies
 * mostly never return). The bound is a count, and the oldest entry goes first.
 *
 * An entry also holds the decoded-session cache's entry its session was last read through
 * (decoded.ts, DecodedHolder) and the store's slot for its key (SessionStore.getLocal, where the
 * bundled stores leave the key's form in their table and the record last unpacked): the session's
 * next request finds both there,
 * each checked against what is stored now, without two more lookups by key in large Maps. It holds
 * nothing the caches do not: an entry either cache lets go is emptied.
 * @module
 */
import { hashId } from './ids.js';
import type { Signer } from './signer.js';
import type { DecodedHolder } from './decoded.js';
import type { LocalSlot } from './store.js';
import { OldestFirst } from './oldest-first.js';

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
  /** SHA-256 of the cookie value that verified: a cookie is taken from the cache only when it hashes to this. */
  digest: string;
  /** The store key: SHA-256 of the value's ID. */
  key: string;
  stale: boolean;
}

/** Entries kept (about 150 bytes each). */
export const VERIFIED_COOKIES_MAX = 10_000;

/** The signature is HMAC-SHA256 in base64url (43 characters); IDs are at most 128 characters. */
const SIG_LENGTH = 43;
const MAX_ID_LENGTH = 128;
const DOT = 0x2e;

/**
 * The cache's key for the signature at `at` in `value`: a small integer mixed from its first eight
 * characters, read in place. A string key would be a new slice of every request's cookie, hashed
 * afresh by the Map; this costs eight character reads. Signatures are HMAC output, so these numbers
 * spread evenly; two signatures that share one only displace each other's entry.
 */
function signatureKey(value: string, at: number): number {
  let n = 0;
  for (let i = at; i < at + 8; i++) n = ((n << 5) - n + value.charCodeAt(i)) & 0x3fffffff;
  return n;
}

export class VerifiedCookies {
  readonly #signer: Signer;
  readonly #max: number;
  readonly #seen = new Map<number, Entry>();
  readonly #oldest = new OldestFirst<number, Entry>();

  constructor(signer: Signer, max = VERIFIED_COOKIES_MAX) {
    this.#signer = signer;
    this.#max = max;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** The ID, store key and staleness of a correctly signed cookie value, else null. */
  verify(value: string): VerifiedCookie | null {
    // Cheap shape check first, so junk of any length is refused before anything is hashed. The dot
    // stands where the signature's fixed length puts it (read in place: a search of a slice of the
    // header would go through the runtime); a value with another dot after it fails the signer's check.
    const dot = value.length - SIG_LENGTH - 1;
    if (dot <= 0 || dot > MAX_ID_LENGTH || value.charCodeAt(dot) !== DOT) return null;
    const hit = this.#seen.get(signatureKey(value, dot + 1));
    const digest = hit === undefined ? undefined : hashId(value);
    if (hit !== undefined && digest === hit.digest) return { id: value.slice(0, dot), key: hit.key, stale: hit.stale, holder: hit };
    const unsigned = this.#signer.unsign(value);
    if (!unsigned) return null;
    const entry = this.#keep(unsigned.signature, digest ?? hashId(value), hashId(unsigned.id), unsigned.stale);
    return { id: unsigned.id, key: entry.key, stale: entry.stale, holder: entry };
  }

  /**
   * Signs `id` with the current secret and remembers the value as verified: a cookie the engine issues
   * (a regenerated or re-signed session) is recognised on its first return without the HMAC. `key` is
   * the ID's store key, which the caller has already computed.
   */
  sign(id: string, key: string): string {
    const signature = this.#signer.signature(id);
    const value = this.#signer.sign(id, signature);
    this.#keep(signature, hashId(value), key, false);
    return value;
  }

  #keep(signature: string, digest: string, key: string, stale: boolean): Entry {
    const entry: Entry = { digest, key, stale, decoded: undefined, local: undefined };
    const at = signatureKey(signature, 0);
    // A signature sharing the number takes its place, as the newest entry.
    if (!this.#seen.delete(at) && this.#seen.size >= this.#max) this.#oldest.shift(this.#seen);
    this.#seen.set(at, entry);
    return entry;
  }
}
