/**
 * Cookie value signing: `id.signature`, HMAC-SHA256 keyed by a list of secrets. The first secret
 * signs; every secret verifies, so secrets rotate without logging anyone out.
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { isWellFormedId, oneShotHash as oneShot } from './ids.js';

/** A signature is HMAC-SHA256 in base64url: exactly 43 characters. */
const SIG_LENGTH = 43;

export interface Unsigned {
  id: string;
  /** True when a secret other than the first verified it: the cookie should be re-signed. */
  stale: boolean;
  /** The signature, as a string of its own (no slice of the value, so keeping it keeps nothing else). */
  signature: string;
}

/** SHA-256's block size in bytes: an HMAC key is padded (or first hashed) to it. */
const BLOCK = 64;
/** Message bytes a Mac hashes through its own buffer; a longer message goes to createHmac. */
const ROOM = 512;

/**
 * HMAC-SHA256 (RFC 2104) of one key, as base64url: SHA-256(K ⊕ opad ‖ SHA-256(K ⊕ ipad ‖ message)),
 * with both padded keys prepared once and each digest taken by the one-shot `crypto.hash` (Node ≥
 * 20.12). `createHmac` builds a native Hmac object per call, which OpenSSL 3 sets up afresh and the
 * garbage collector must finalise: on a server reading 20,000 sessions, more than its caches hold,
 * that cost ≈ 3–6 µs per read (bench/analysis.md item 39). The output is createHmac's (the tests
 * compare them over keys either side of the block size and messages of every length a cookie ID
 * may have); messages longer than ROOM, and Nodes without `crypto.hash`, take createHmac itself.
 */
class Mac {
  readonly #key: Buffer;
  /** K ⊕ ipad, then the message. */
  readonly #inner = Buffer.alloc(BLOCK + ROOM);
  /** K ⊕ opad, then the inner digest. */
  readonly #outer = Buffer.alloc(BLOCK + 32);

  constructor(key: Buffer) {
    this.#key = key;
    const k = Buffer.alloc(BLOCK);
    (key.length > BLOCK ? createHash('sha256').update(key).digest() : key).copy(k);
    for (let i = 0; i < BLOCK; i++) {
      this.#inner[i] = k[i]! ^ 0x36;
      this.#outer[i] = k[i]! ^ 0x5c;
    }
  }

  base64url(message: string): string {
    // Three UTF-8 bytes at most per UTF-16 unit, so a message this short always fits.
    if (oneShot === undefined || message.length * 3 > ROOM) {
      return createHmac('sha256', this.#key).update(message).digest('base64url');
    }
    const n = this.#inner.write(message, BLOCK, 'utf8');
    // 'binary' (latin1) text maps each digest byte to one character and back.
    const inner = oneShot('sha256', this.#inner.subarray(0, BLOCK + n), 'binary');
    // The message is a session ID: not left behind in the buffer for a heap dump to find.
    this.#inner.fill(0, BLOCK, BLOCK + n);
    this.#outer.write(inner, BLOCK, 'latin1');
    return oneShot('sha256', this.#outer, 'base64url');
  }
}

export class Signer {
  readonly #keys: readonly Mac[];

  constructor(secrets: readonly string[]) {
    this.#keys = secrets.map((s) => new Mac(Buffer.from(s, 'utf8')));
  }

  /** The cookie value for `id`; `signature`, when the caller has computed it already, is `signature(id)`. */
  sign(id: string, signature = this.signature(id)): string {
    return `${id}.${signature}`;
  }

  /** The signature `sign` appends to `id`. */
  signature(id: string): string {
    return this.#keys[0]!.base64url(id);
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
      const expected = this.#keys[i]!.base64url(id);
      if (safeEqual(given, expected) && match === -1) {
        match = i;
        signature = expected;
      }
    }
    return signature === null ? null : { id, stale: match !== 0, signature };
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
