/**
 * `encryptedCodec`: session data encrypted at rest. A store dump then holds neither the cookie (only
 * hashes of IDs are stored) nor what the sessions hold (carts, addresses, tokens of other services):
 * AES-256-GCM under keys derived from the given secrets, the first encrypting, all decrypting, so a
 * key is rotated as the signing secrets are. Confidentiality only: whoever can write to the store can
 * still delete or replace records, and a record's owner and deadlines stay readable beside its data.
 * User contexts (`tether.users`) are sealed alike, through `encodeText` / `decodeText`.
 * @module
 */
import { createHash, hkdfSync } from 'node:crypto';
import { isJsonCodec, jsonCodec } from './codec.js';
import type { Envelope, SessionCodec } from './codec.js';
import { OptionsInvalidError } from './errors.js';
import { TETHER_DEFAULTS } from './options.js';
import { seal, unseal } from './seal.js';

export interface EncryptedCodecOptions {
  /**
   * Secrets the data keys are derived from (HKDF-SHA-256), each at least 32 characters with at least 8
   * different ones: the first encrypts, every one decrypts. Keep them apart from the signing secrets.
   * Rotate by adding the new one last on every process, then moving it first; drop the old one once
   * every session written under it has ended (`absoluteTimeoutMs`, or `remember.absoluteTimeoutMs`).
   */
  keys: string | readonly string[];
  /** The codec whose text is encrypted. @default jsonCodec */
  inner?: SessionCodec;
  /**
   * Read records that are not encrypted (written before the codec was turned on) with `inner`, so that
   * turning it on logs nobody out; each is encrypted at its next write. False treats them as absent.
   * @default true
   */
  readPlaintext?: boolean;
}

/** What every version of the format begins with. */
const FAMILY = '"tether:enc:';
/**
 * The start of an encrypted record: a JSON string, as stores that check their data expect, which no
 * JSON envelope (an object) can be.
 */
const MARK = `${FAMILY}1:`;
const INFO = 'tether session data';
/** Hex digits of a key's ID: enough to tell a handful of keys apart, nothing to attack. */
const KID_CHARS = 8;

interface DataKey {
  id: string;
  key: Buffer;
}

function dataKey(secret: string): DataKey {
  const key = Buffer.from(hkdfSync('sha256', secret, '', INFO, 32));
  return { id: createHash('sha256').update(key).digest('hex').slice(0, KID_CHARS), key };
}

/**
 * A codec that encrypts what `inner` (JSON by default) encodes.
 * @example
 * createTether({ secrets, codec: encryptedCodec({ keys: process.env.TETHER_DATA_KEY!.split(',') }) });
 */
export function encryptedCodec(options: EncryptedCodecOptions): SessionCodec {
  if (typeof options !== 'object' || options === null) throw new OptionsInvalidError('encryptedCodec options must be an object with keys');
  const known = new Set(['keys', 'inner', 'readPlaintext']);
  for (const name of Object.keys(options)) if (!known.has(name)) throw new OptionsInvalidError(`encryptedCodec options.${name} is not an option (known: keys, inner, readPlaintext)`);
  const list = typeof options.keys === 'string' ? [options.keys] : options.keys;
  if (!Array.isArray(list) || list.length === 0 || !list.every((k) => typeof k === 'string')) {
    throw new OptionsInvalidError('encryptedCodec options.keys must be a string or a non-empty array of strings');
  }
  list.forEach((k, i) => {
    const distinct = new Set(k).size;
    if (k.length < TETHER_DEFAULTS.minSecretLength || distinct < TETHER_DEFAULTS.minSecretDistinctChars) {
      throw new OptionsInvalidError(`encryptedCodec options.keys[${i}] has ${k.length} characters, ${distinct} of them different: each key needs at least `
        + `${TETHER_DEFAULTS.minSecretLength}, with ${TETHER_DEFAULTS.minSecretDistinctChars} different. Generate one with npx tether secret`);
    }
  });
  const inner = options.inner ?? jsonCodec;
  if (typeof inner?.encode !== 'function' || typeof inner?.decode !== 'function') throw new OptionsInvalidError('encryptedCodec options.inner must be a codec: an object with encode() and decode()');
  if (options.readPlaintext !== undefined && typeof options.readPlaintext !== 'boolean') throw new OptionsInvalidError('encryptedCodec options.readPlaintext must be a boolean');
  const readPlaintext = options.readPlaintext ?? true;
  const keys = list.map(dataKey);
  const byId = new Map(keys.map((k) => [k.id, k.key]));
  if (byId.size !== keys.length) throw new OptionsInvalidError('encryptedCodec options.keys holds the same key twice');
  const current = keys[0]!;

  /** The text `inner` encoded, from a stored record (or the record itself when plaintext is read). */
  const open = (text: string): string => {
    if (!text.startsWith(MARK)) {
      // Another version of the format, or a header changed in the store: encrypted all the same, never
      // plaintext (the JSON codec would read a JSON string as an empty session).
      if (text.startsWith(FAMILY)) throw new TypeError('the record is encrypted in a format this codec does not read');
      if (readPlaintext) return text;
      throw new TypeError('the record is not encrypted');
    }
    const body = text.slice(MARK.length, -1);
    const key = byId.get(body.slice(0, KID_CHARS));
    if (key === undefined || body[KID_CHARS] !== ':' || !text.endsWith('"')) throw new TypeError('the record is encrypted under a key this codec does not hold');
    const plain = unseal(key, Buffer.from(body.slice(KID_CHARS + 1), 'base64url'));
    if (plain === null) throw new TypeError('the encrypted record was changed, cut short, or sealed under another key');
    return plain;
  };
  const close = (text: string): string => `${MARK}${current.id}:${seal(current.key, text).toString('base64url')}"`;

  return {
    // Over the JSON codec, what decode gives is the JSON codec's decoding: the engine shares it.
    json: isJsonCodec(inner),
    encode: (envelope: Envelope): string => close(inner.encode(envelope)),
    decode: (text: string): Envelope => inner.decode(open(text)),
    // User contexts: their JSON text, sealed alike.
    encodeText: close,
    decodeText: open,
  };
}
