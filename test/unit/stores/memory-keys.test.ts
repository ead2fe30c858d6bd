/** MemoryStore's key forms: digests as their 32 bytes, any other key kept apart and given back exactly. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RAW_KEY_LENGTH, fromStoredKey, knownStoredKey, storedKeyBytes, toStoredKey } from '../../../src/stores/memory/keys.js';

describe('MemoryStore keys', () => {
  it('stored key when the key is a base64url SHA-256 then it is its 32 bytes and converts back', () => {
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(32).toString('base64url');
      const stored = toStoredKey(key);
      assert.equal(stored.length, RAW_KEY_LENGTH);
      assert.equal(stored, randomBytesBack(key));
      assert.equal(fromStoredKey(stored), key);
      assert.equal(storedKeyBytes(stored), 32);
    }
  });

  it('stored key when a caller names a key\'s known form then that key converts to it and every other key as before', () => {
    const [a, b] = [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')];
    const [sa, sb] = [randomBytesBack(a), randomBytesBack(b)];
    toStoredKey(b);
    knownStoredKey(a, sa);
    assert.equal(toStoredKey(a), sa);
    assert.equal(toStoredKey(b), sb);
    assert.equal(toStoredKey(a), sa);
    knownStoredKey('user:1', 'user:1');
    assert.equal(toStoredKey(a), sa);
    assert.equal(fromStoredKey(toStoredKey('user:1')), 'user:1');
  });

  it('stored key when 43 base64url characters end in stray bits then it is not taken for a digest', () => {
    const digest = randomBytes(32).toString('base64url');
    const stray = digest.slice(0, 42) + 'B'; // decodes to the same bytes as ...'A' would
    assert.notEqual(toStoredKey(stray).length, RAW_KEY_LENGTH);
    assert.equal(fromStoredKey(toStoredKey(stray)), stray);
    assert.notEqual(toStoredKey(stray), toStoredKey(digest.slice(0, 42) + 'A'));
  });

  it('stored key when the key is anything else then it round-trips and never has the digest length', () => {
    const keys = ['', 'a', 'user:' + randomBytes(32).toString('base64url'), 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(33),
      '\u0000'.repeat(32), '\u0000abc', 'ключ-' + 'k'.repeat(40), '😀'.repeat(16), 'a\ud800b', `${randomBytes(32).toString('base64url')}:*?`,
      randomBytes(32).toString('base64url').replace(/./, '+')];
    for (const key of keys) {
      const stored = toStoredKey(key);
      assert.notEqual(stored.length, RAW_KEY_LENGTH, JSON.stringify(key));
      assert.equal(fromStoredKey(stored), key);
    }
  });

  it('stored key when another key has exactly the characters of a digest’s bytes then the two stay distinct', () => {
    const digest = randomBytes(32).toString('base64url');
    const bytesAsText = toStoredKey(digest);
    assert.notEqual(toStoredKey(bytesAsText), bytesAsText);
    assert.equal(fromStoredKey(toStoredKey(bytesAsText)), bytesAsText);
  });

  it('stored key bytes when a key holds characters above U+00FF then counts two bytes per character', () => {
    assert.equal(storedKeyBytes(toStoredKey('abc')), 3);
    assert.equal(storedKeyBytes(toStoredKey('ключ')), 8);
  });
});

function randomBytesBack(key: string): string {
  return Buffer.from(key, 'base64url').toString('latin1');
}
