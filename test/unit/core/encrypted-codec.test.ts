/**
 * encryptedCodec: session data encrypted at rest (AES-256-GCM), keys rotated like signing secrets,
 * tampered or foreign records refused, plaintext records read while the codec is turned on; and an
 * engine over a real SQLite file whose bytes never hold what the sessions, or the user contexts, hold.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { encryptedCodec } from '../../../src/core/encrypted-codec.js';
import { jsonCodec } from '../../../src/core/codec.js';
import type { Envelope } from '../../../src/core/codec.js';
import { createTether } from '../../../src/core/engine.js';
import { userContextKey } from '../../../src/core/ids.js';
import { SqliteStore } from '../../../src/stores/sqlite/index.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { tempSqliteFile } from '../../helpers/sqlite.js';
import { ManualClock, SECRET_A, trip, view } from '../support.js';

const key = (): string => randomBytes(32).toString('base64url');
const ENVELOPE: Envelope = { d: { cart: ['secret-tea'], address: 'Elm Street 7' }, c: 'csrf-token', u: 'Firefox', r: 1, a: 1_700_000_000_000, n: '203.0.113.0/24', i: 1_700_000_000_001 };

describe('encryptedCodec', () => {
  it('codec when it encodes then the text is a JSON string holding none of the data, new at every encoding, and decodes to the envelope', () => {
    const codec = encryptedCodec({ keys: key() });
    const a = codec.encode(ENVELOPE);
    const b = codec.encode(ENVELOPE);
    assert.notEqual(a, b, 'a fresh IV each time');
    assert.equal(typeof JSON.parse(a), 'string');
    for (const text of ['secret-tea', 'Elm Street', 'csrf-token', 'Firefox', '203.0.113']) assert.equal(a.includes(text), false, text);
    assert.deepEqual(codec.decode(a), ENVELOPE);
    assert.deepEqual(codec.decode(b), ENVELOPE);
  });

  it('keys when rotated (new one last, then first) then every step reads what the one before wrote, and a dropped key reads nothing', () => {
    const [oldKey, newKey] = [key(), key()];
    const before = encryptedCodec({ keys: [oldKey] });
    const added = encryptedCodec({ keys: [oldKey, newKey] });
    const moved = encryptedCodec({ keys: [newKey, oldKey] });
    const after = encryptedCodec({ keys: [newKey] });
    const written = before.encode(ENVELOPE);
    assert.deepEqual(added.decode(written), ENVELOPE);
    assert.deepEqual(moved.decode(added.encode(ENVELOPE)), ENVELOPE);
    const rewritten = moved.encode(ENVELOPE);
    assert.deepEqual(added.decode(rewritten), ENVELOPE, 'a process not yet moved reads what a moved one wrote');
    assert.deepEqual(after.decode(rewritten), ENVELOPE);
    assert.throws(() => after.decode(written), /a key this codec does not hold/);
  });

  it('record when changed, cut short, its key ID or version altered then decode throws without quoting it, plaintext read or not', () => {
    const codec = encryptedCodec({ keys: key() });
    const text = codec.encode(ENVELOPE);
    const at = text.length - 10;
    const flipped = text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
    // A version this codec does not know, or a header damaged in the store, is not plaintext: read as
    // such, the JSON codec would make an empty session of it.
    const versions = [text.replace('"tether:enc:1:', '"tether:enc:2:'), text.replace('"tether:enc:1:', '"tether:enc:l:')];
    for (const bad of [flipped, text.slice(0, 40) + '"', text.replace(/tether:enc:1:[0-9a-f]{8}/, 'tether:enc:1:00000000'), '"tether:enc:1:"', ...versions]) {
      assert.throws(() => codec.decode(bad), (err: Error) => err instanceof TypeError && !/[A-Za-z0-9_-]{20}/.test(err.message), bad.slice(0, 30));
    }
  });

  it('plaintext record when read then decoded by the inner codec, unless readPlaintext is false', () => {
    const plain = jsonCodec.encode(ENVELOPE);
    assert.deepEqual(encryptedCodec({ keys: key() }).decode(plain), ENVELOPE);
    assert.throws(() => encryptedCodec({ keys: key(), readPlaintext: false }).decode(plain), /not encrypted/);
  });

  it('options when wrong then OPTIONS_INVALID naming the option, never quoting a key', () => {
    const weak = 'x'.repeat(40);
    for (const [options, message] of [
      [{ keys: [] }, /keys must be a string or a non-empty array/],
      [{ keys: 'short-key' }, /keys\[0\] has 9 characters/],
      [{ keys: [key(), weak] }, /keys\[1\] has 40 characters, 1 of them different/],
      [{ keys: [SECRET_A, SECRET_A] }, /the same key twice/],
      [{ keys: key(), readPlaintext: 'yes' }, /readPlaintext must be a boolean/],
      [{ keys: key(), inner: {} }, /inner must be a codec/],
      [{ keys: key(), key: 'typo' }, /options\.key is not an option/],
    ] as const) {
      assert.throws(() => encryptedCodec(options as never), (err: Error & { code?: string }) => err.code === 'OPTIONS_INVALID' && message.test(err.message) && !err.message.includes(weak), String(message));
    }
  });

  it('engine with encryptedCodec when a session is read ten times then its record is decrypted once, and a request changing its copy leaves the others theirs', async () => {
    const codec = encryptedCodec({ keys: key() });
    assert.equal(codec.json, true, 'over the JSON codec, the engine may share its decodings');
    let decoded = 0;
    const counted = { json: codec.json, encode: (envelope: Envelope) => codec.encode(envelope), decode: (text: string) => (decoded++, codec.decode(text)) };
    const tether = createTether<{ cart: string[] }>({ secrets: [SECRET_A], store: new MemoryStore({ sweepIntervalMs: 0 }), codec: counted });
    try {
      const first = await trip(tether, undefined, (s) => s.set('cart', ['tea']));
      decoded = 0;
      for (let i = 0; i < 10; i++) await trip(tether, first.cookie, (s) => void assert.deepEqual(s.data.cart, ['tea']), 'GET');
      assert.equal(decoded, 1, 'ten reads, one decryption');
      const a = await tether.open(view('POST', { cookie: first.cookie! }));
      a.data.cart!.push('jam');
      await tether.commit(a);
      const b = await trip(tether, first.cookie, (s) => void assert.deepEqual(s.data.cart, ['tea', 'jam']), 'GET');
      assert.equal(b.session.isNew, false);
      assert.equal(decoded, 1, 'a change leaves its decoding behind: the read after it decrypts nothing');
      assert.equal(encryptedCodec({ keys: key(), inner: { encode: JSON.stringify, decode: JSON.parse } }).json, false, 'over another codec, not');
    } finally {
      await tether.close();
    }
  });

  it('engine over a SQLite file when sessions are encrypted then the file holds none of their data, they read back, and a plaintext session is encrypted at its next write', async () => {
    const file = await tempSqliteFile();
    const dataKey = key();
    try {
      // A session stored before the codec was turned on.
      const plainStore = new SqliteStore({ path: file.path, sweepIntervalMs: 0 });
      const before = createTether<{ cart: string[] }>({ secrets: [SECRET_A], store: plainStore });
      const early = await trip(before, undefined, (s) => s.set('cart', ['plain-jam']));
      await before.close();

      const store = new SqliteStore({ path: file.path, sweepIntervalMs: 0 });
      const tether = createTether<{ cart: string[] }>({ secrets: [SECRET_A], store, codec: encryptedCodec({ keys: dataKey }) });
      const first = await trip(tether, undefined, (s) => s.set('cart', ['secret-tea']));
      const read = await trip(tether, first.cookie, (s) => void assert.deepEqual(s.data.cart, ['secret-tea']), 'GET');
      assert.equal(read.session.isNew, false);
      const old = await trip(tether, early.cookie, (s) => {
        assert.deepEqual(s.data.cart, ['plain-jam'], 'a plaintext session is still read');
        s.set('cart', ['plain-jam', 'more']);
      });
      assert.equal(old.session.isNew, false);
      await tether.close();

      const bytes = readdirSync(file.dir).map((f) => readFileSync(join(file.dir, f)).toString('latin1')).join('');
      assert.ok(bytes.includes('tether:enc:1:'), 'encrypted records are in the file');
      assert.equal(bytes.includes('secret-tea'), false, 'no session data in the file');
      assert.equal(bytes.includes('more'), false, 'the plaintext session was encrypted at its write');

      // Another key reads nothing: the session is treated as absent, its user starts anew.
      const otherStore = new SqliteStore({ path: file.path, sweepIntervalMs: 0 });
      const other = createTether<{ cart: string[] }>({ secrets: [SECRET_A], store: otherStore, codec: encryptedCodec({ keys: key(), readPlaintext: false }) });
      const warned = new Promise<string | undefined>((resolve) => process.once('warning', (w: Error & { code?: string }) => resolve(w.code)));
      const stranger = await trip(other, first.cookie, () => {}, 'GET');
      assert.equal(stranger.session.isNew, true);
      assert.equal(await warned, 'TETHER_RECORD_UNDECODABLE');
      await other.close();
    } finally {
      await file.remove();
    }
  });

  it('user contexts under encryptedCodec when stored then the SQLite file holds none of them, a plaintext one is read and sealed at its next change, and another key reads an empty context', async () => {
    const file = await tempSqliteFile();
    const dataKey = key();
    try {
      // A context saved before the codec was turned on.
      const before = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: file.path, sweepIntervalMs: 0 }) });
      await before.users.update('early', (ctx) => ({ ...ctx, saved: ['plain-jam'] }));
      await before.close();

      const tether = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: file.path, sweepIntervalMs: 0 }), codec: encryptedCodec({ keys: dataKey }) });
      await tether.users.update('ada', (ctx) => ({ ...ctx, saved: ['secret-tea'], address: 'Elm Street 7' }));
      assert.deepEqual(await tether.users.get('ada'), { saved: ['secret-tea'], address: 'Elm Street 7' });
      assert.deepEqual(await tether.users.get('early'), { saved: ['plain-jam'] }, 'a plaintext context is still read');
      const stored = (await tether.store.get(userContextKey('ada')))!;
      // Unchanged by an update that changes nothing, though every sealing differs.
      await tether.users.update('ada', () => {});
      assert.equal((await tether.store.get(stored.key))!.version, stored.version, 'a no-op update writes nothing');
      await tether.users.update('early', (ctx) => ({ ...ctx, saved: [...(ctx.saved as string[]), 'more-marmalade'] }));
      await tether.close();

      const bytes = readdirSync(file.dir).map((f) => readFileSync(join(file.dir, f)).toString('latin1')).join('');
      assert.ok(bytes.includes('tether:enc:1:'), 'sealed contexts are in the file');
      for (const secret of ['secret-tea', 'Elm Street', 'more-marmalade']) assert.equal(bytes.includes(secret), false, `${secret} is not readable in the file`);

      // Another key: the context reads as empty (warned), and an update starts it afresh.
      const other = createTether({ secrets: [SECRET_A], store: new SqliteStore({ path: file.path, sweepIntervalMs: 0 }), codec: encryptedCodec({ keys: key() }) });
      const warned = new Promise<string | undefined>((resolve) => process.once('warning', (w: Error & { code?: string }) => resolve(w.code)));
      assert.deepEqual(await other.users.get('ada'), {});
      assert.equal(await warned, 'TETHER_RECORD_UNDECODABLE');
      assert.deepEqual(await other.users.update('ada', (ctx) => ({ ...ctx, n: 1 })), { n: 1 });
      assert.deepEqual(await other.users.get('ada'), { n: 1 });
      await other.close();
    } finally {
      await file.remove();
    }
  });
  it('user contexts when only read after a key rotation, or after the codec was turned on, then a read that keeps one alive seals it under the first key, so the old key (or plaintext) can go once userContextTtlMs has passed', async () => {
    const DAY = 86_400_000;
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const [oldKey, newKey] = [key(), key()];
    const engine = (codec?: ReturnType<typeof encryptedCodec>) => createTether({ secrets: [SECRET_A], clock, store, userContextTtlMs: 10 * DAY, ...(codec ? { codec } : {}) });
    await engine().users.update('plain', (ctx) => void (ctx.theme = 'dark'));
    await engine(encryptedCodec({ keys: oldKey })).users.update('ada', (ctx) => void (ctx.theme = 'light'));
    // The new key moved first; both contexts are read, never changed, for longer than a TTL.
    const rotated = engine(encryptedCodec({ keys: [newKey, oldKey] }));
    for (let day = 1; day <= 12; day++) {
      clock.advance(DAY);
      assert.deepEqual(await rotated.users.get('ada'), { theme: 'light' });
      assert.deepEqual(await rotated.users.get('plain'), { theme: 'dark' });
    }
    const only = engine(encryptedCodec({ keys: newKey, readPlaintext: false }));
    assert.deepEqual(await only.users.get('ada'), { theme: 'light' }, 'readable without the old key');
    assert.deepEqual(await only.users.get('plain'), { theme: 'dark' }, 'sealed, not left in plaintext');
    const rec = (await store.get(userContextKey('ada')))!;
    assert.equal(rec.lastSeenAt, clock.now() - 12 * DAY, 'still last written at its update');
  });
});
