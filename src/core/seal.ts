/**
 * AES-256-GCM with a random 96-bit IV, as one buffer (IV, ciphertext, tag): what a renewal's pointer
 * holds (renewal.ts) and what `encryptedCodec` stores.
 * @module
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { randomPoolBytes } from './ids.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** `plain` encrypted and authenticated under the 32-byte `key`. */
export function seal(key: Buffer, plain: string): Buffer {
  // From the pool IDs are drawn from: a call into the CSPRNG of its own cost ≈ 5 µs here.
  const iv = randomPoolBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  return Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
}

/** What `seal` sealed under `key`; null when `sealed` is cut short, was changed, or was sealed under another key. */
export function unseal(key: Buffer, sealed: Buffer): string | null {
  if (sealed.length <= IV_BYTES + TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
