/**
 * How MemoryStore holds its keys: a session key (the base64url SHA-256 the engine hands over) as its
 * 32 raw bytes, one byte per character (48 heap bytes instead of 64), any other key as a flat copy.
 * @module
 */

/** Length of a stored digest key; no other stored key has it. */
export const RAW_KEY_LENGTH = 32;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Per ASCII code: the base64url digit's value + 1, or 0 for any other character. */
const DIGITS = new Uint8Array(128);
for (let i = 0; i < 64; i++) DIGITS[ALPHABET.charCodeAt(i)] = i + 1;
/** Prefix of other keys that would otherwise be 32 characters or longer: it keeps the two forms apart. */
const LONG = '\u0000';

const scratch = Buffer.allocUnsafeSlow(256);
/**
 * The last conversion: an engine request names the same key in its get and its set or touch, often
 * as the same string, so the second conversion is a comparison.
 */
let lastKey = '';
let lastStored = '';

/** The form `key` is stored under; one-to-one, undone by `fromStoredKey`. */
export function toStoredKey(key: string): string {
  if (key === lastKey) return lastStored;
  const stored = digestBytes(key) ? scratch.toString('latin1', 0, RAW_KEY_LENGTH) : flatCopy(key.length < RAW_KEY_LENGTH ? '' : LONG, key);
  lastKey = key;
  lastStored = stored;
  return stored;
}

/**
 * Tells the conversion that `stored` is `key`'s form, already known to the caller (a read that found
 * the key through its slot): the same request's write then converts `key` with a comparison.
 */
export function knownStoredKey(key: string, stored: string): void {
  lastKey = key;
  lastStored = stored;
}

export function fromStoredKey(stored: string): string {
  if (stored.length === RAW_KEY_LENGTH) {
    scratch.write(stored, 0, 'latin1');
    return scratch.toString('base64url', 0, RAW_KEY_LENGTH);
  }
  return stored.length < RAW_KEY_LENGTH ? stored : stored.slice(LONG.length);
}

/** Whether a stored key names a session, not a user context (`isSessionKey` of `fromStoredKey(stored)`, without making the string). */
export function isSessionStoredKey(stored: string): boolean {
  if (stored.length === RAW_KEY_LENGTH) return true;
  return !stored.startsWith('user:', stored.length < RAW_KEY_LENGTH ? 0 : LONG.length);
}

/**
 * Decodes `key` into `scratch[0, 32)` if it is a digest: 43 base64url digits whose last one carries
 * no stray bits (so the bytes give the same text back). Returns whether it was one.
 */
function digestBytes(key: string): boolean {
  if (key.length !== 43) return false;
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < 43; i++) {
    const c = key.charCodeAt(i);
    const d = c < 128 ? DIGITS[c]! : 0;
    if (d === 0) return false;
    acc = ((acc << 6) | (d - 1)) & 0xfff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      scratch[o++] = acc >>> bits;
    }
  }
  // 43 digits are 258 bits: the last 2 must be zero.
  return (acc & 3) === 0;
}

/** Heap bytes of a stored key's characters (one per character, two once any is above U+00FF). */
export function storedKeyBytes(stored: string): number {
  return stored.length === RAW_KEY_LENGTH ? RAW_KEY_LENGTH : stringBytes(stored);
}

/** Characters × 1 or 2: what V8 spends on a flat string's characters. */
export function stringBytes(s: string): number {
  return isOneByte(s) ? s.length : s.length * 2;
}

export function isOneByte(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/**
 * `prefix + key` as one flat string: a caller's key may be a concatenation (a rope of several heap
 * objects) that the map would otherwise keep alive as it is.
 */
function flatCopy(prefix: string, key: string): string {
  const text = prefix + key;
  const oneByte = isOneByte(text);
  const size = oneByte ? text.length : text.length * 2;
  const buf = size <= scratch.length ? scratch : Buffer.allocUnsafeSlow(size);
  buf.write(text, 0, oneByte ? 'latin1' : 'utf16le');
  return buf.toString(oneByte ? 'latin1' : 'utf16le', 0, size);
}
