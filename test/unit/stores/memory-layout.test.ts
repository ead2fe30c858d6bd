/** RecordPacker: one string per record, every field given back exactly, before and after the code is trained. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RECENT_TEXTS, RecordPacker, TRAINING, WRITE_BEHIND, readHead } from '../../../src/stores/memory/layout.js';
import { RecordTable, entryBytes } from '../../../src/stores/memory/table.js';
import { toStoredKey } from '../../../src/stores/memory/keys.js';
import type { PackedFields } from '../../../src/stores/memory/layout.js';
import type { LocalSlot } from '../../../src/core/store.js';

const now = 1_795_832_087_067;
const base: PackedFields = {
  data: '{"d":{"cart":[{"sku":"SKU-10013","qty":1,"price":1999}],"prefs":{"theme":"light"},"n":0}}',
  version: 1,
  userId: null,
  createdAt: now,
  lastSeenAt: now,
  expiresAt: now + 1_860_000,
  absoluteExpiresAt: now + 43_200_000,
};

function unpack(packer: RecordPacker, s: string): PackedFields {
  const h = readHead(s);
  return {
    data: packer.data(s, h), version: h.version, userId: h.userId, createdAt: h.createdAt,
    lastSeenAt: h.lastSeenAt, expiresAt: h.expiresAt, absoluteExpiresAt: h.absoluteExpiresAt,
  };
}

function trained(): RecordPacker {
  const packer = new RecordPacker();
  for (let i = 0; i < TRAINING.records; i++) packer.pack({ ...base, data: base.data.replace('10013', String(10_000 + i)) });
  assert.ok(packer.coding);
  return packer;
}

/** Records whose fields are awkward in one way each. */
const awkward: Array<Partial<PackedFields>> = [
  {},
  { data: '' },
  { data: '{"name":"Zoë Ünïcödé 名前 🛒","rtl":"שלום","nul":"a\\u0000b"}' },
  { data: 'Zoë' },
  { data: 'lone \ud800 surrogate \udfff', userId: 'also \udc00 lone' },
  { data: 'x'.repeat(70_000) },
  { userId: 'alice' },
  { userId: '' },
  { userId: 'ユーザー-😀-42' },
  { userId: 'é'.repeat(300) },
  { version: 2 ** 40, createdAt: 0, lastSeenAt: 0, expiresAt: 0, absoluteExpiresAt: 0 },
  { createdAt: now + 5, lastSeenAt: now }, // lastSeenAt before createdAt
  { expiresAt: now - 1 },
  { createdAt: -1 },
  { createdAt: 1.5 },
  { version: -0 },
  { expiresAt: Number.MAX_SAFE_INTEGER + 2 },
  { absoluteExpiresAt: Infinity },
  { lastSeenAt: Number.NaN },
];

describe('RecordPacker', () => {
  for (const [label, packer] of [['untrained', () => new RecordPacker()], ['trained', trained]] as const) {
    it(`record packer when ${label} then gives every field of awkward records back exactly`, () => {
      const p = packer();
      for (const fields of awkward) {
        const rec = { ...base, ...fields };
        const s = p.pack(rec);
        for (let i = 0; i < s.length; i++) assert.ok(s.charCodeAt(i) <= 0xff, 'one byte per character');
        const back = unpack(p, s);
        assert.deepEqual(back, rec, JSON.stringify(fields).slice(0, 80));
        for (const k of ['version', 'createdAt', 'lastSeenAt', 'expiresAt', 'absoluteExpiresAt'] as const) assert.ok(Object.is(back[k], rec[k]), k);
      }
    });

    it(`record packer when ${label} and touched then changes only expiresAt and lastSeenAt`, () => {
      const p = packer();
      for (const fields of awkward) {
        const rec = { ...base, ...fields };
        const s = p.pack(rec);
        for (const [expiresAt, lastSeenAt] of [[now + 9_000_000, now + 60_000], [-5, 2.5]]) {
          const t = p.touched(s, readHead(s), expiresAt!, lastSeenAt!);
          assert.deepEqual(unpack(p, t), { ...rec, expiresAt, lastSeenAt });
        }
      }
    });
  }

  it('record packer when trained then packs a typical session in well under its text length', () => {
    const p = trained();
    const s = p.pack({ ...base, data: base.data.replace('10013', '55555') });
    assert.ok(s.length < base.data.length * 0.85, `${s.length} characters for ${base.data.length} of data`);
  });

  it('record packer when coding would not shrink the data then keeps it as it is', () => {
    const p = trained();
    const noise = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 151 + 7) % 256)).toString('latin1');
    const s = p.pack({ ...base, data: noise });
    assert.equal(unpack(p, s).data, noise);
    assert.ok(s.length <= noise.length * 2 + 24);
  });

  it('record packer when one huge record comes first then counts only its first bytes towards training', () => {
    const p = new RecordPacker();
    p.pack({ ...base, data: 'q'.repeat(1_000_000) });
    for (let i = 1; i < TRAINING.records; i++) p.pack(base);
    const s = p.pack(base);
    assert.ok(s.length < base.data.length, 'the code still fits the common records');
  });

  for (const [label, packer, slots] of [
    ['untrained', () => new RecordPacker(), false], ['trained', trained, false],
    ['untrained, with a slot per key', () => new RecordPacker(), true], ['trained, with a slot per key', trained, true],
  ] as const) {
    it(`record packer when ${label} and a key is read again then gives the data of the packed string it is given`, () => {
      const p = packer();
      const held = new Map<string, LocalSlot>();
      const slot = (key: string): LocalSlot | undefined => {
        if (!slots) return undefined;
        if (!held.has(key)) held.set(key, { local: undefined });
        return held.get(key);
      };
      // As the stores read: the record a slot keeps when it stands for `s`, else unpacked.
      const read = (key: string, s: string): string => {
        const sl = slot(key);
        const rec = p.shared(p.held(sl), s, now) ?? p.record(key, key, s, readHead(s), sl);
        const { version, createdAt, lastSeenAt, expiresAt, absoluteExpiresAt, userId } = readHead(s);
        assert.deepEqual({ ...rec, data: '' }, { key, data: '', version, createdAt, lastSeenAt, expiresAt, absoluteExpiresAt, userId });
        return rec.data;
      };
      const one = p.pack(base);
      const two = p.pack({ ...base, data: base.data.replace('light', 'dark'), version: 2 });
      assert.equal(read('k', one), base.data);
      assert.equal(read('k', one), base.data);
      assert.equal(read('k', two), base.data.replace('light', 'dark'));
      assert.equal(read('k', one), base.data, 'an older packed string still gives its own data');
      const touched = p.touched(one, readHead(one), now + 5, now + 1);
      assert.equal(read('k', touched), base.data);
      // Written under a key read before, and touched: the key's entry follows, and every string still gives its own data.
      const three = p.pack({ ...base, data: '{"d":{"n":3}}', version: 3 }, 'k');
      assert.equal(read('k', three), '{"d":{"n":3}}');
      const threeTouched = p.touched(three, readHead(three), now + 9, now + 2, 'k');
      assert.equal(read('k', threeTouched), '{"d":{"n":3}}');
      assert.equal(read('k', touched), base.data);
      p.pack({ ...base, data: '{"d":{"n":4}}', version: 4 }, 'never-read');
      assert.equal(read('never-read', p.pack({ ...base, data: '{"d":{"n":5}}', version: 5 }, 'never-read')), '{"d":{"n":5}}');
      // A text over the bound is never kept; the key then gives whatever it is handed next.
      const big = p.pack({ ...base, data: 'b'.repeat(RECENT_TEXTS.maxChars + 1) });
      assert.equal(read('k', big), 'b'.repeat(RECENT_TEXTS.maxChars + 1));
      assert.equal(read('k', one), base.data);
      // Past the bound in keys, the oldest are forgotten and read again from their bytes.
      const many = Array.from({ length: RECENT_TEXTS.entries + 10 }, (_, i) => p.pack({ ...base, data: `{"i":${i}}` }));
      for (let round = 0; round < 2; round++) many.forEach((s, i) => assert.equal(read(`key-${i}`, s), `{"i":${i}}`));
      assert.equal(read('k', two), base.data.replace('light', 'dark'));
    });
  }

  it('record packer when a slot holds a recent text then serves it only for the packed string it stands for and only from its own packer, and lets it go with the entry', () => {
    const p = trained();
    const slot: LocalSlot = { local: undefined };
    const one = p.pack(base);
    assert.equal(p.record('k', 'k', one, readHead(one), slot).data, base.data);
    const entry = slot.local;
    assert.ok(entry !== undefined, 'the text kept is left in the slot');
    assert.equal(p.record('k', 'k', one, readHead(one), slot).data, base.data);
    assert.equal(slot.local, entry, 'the same entry serves the same packed string');
    const other = new RecordPacker();
    const theirs = other.pack(base);
    assert.equal(other.record('k', 'k', theirs, readHead(theirs), slot).data, base.data);
    assert.notEqual(slot.local, entry, 'another packer does not take this one\'s entry');
    for (let i = 0; i <= RECENT_TEXTS.entries; i++) {
      const s = p.pack({ ...base, data: `{"i":${i}}` });
      p.record(`key-${i}`, `key-${i}`, s, readHead(s));
    }
    assert.deepEqual({ ...(entry as object) }, { ...(entry as object), packed: '', text: '', record: null }, 'an entry pushed out is emptied, so a slot still holding it keeps nothing alive');
  });

  it('record packer when a slot keeps a record then hands out that one object only for its own packed string, while live, until the key is written, touched or pushed out', () => {
    const p = trained();
    const slot: LocalSlot = { local: undefined };
    const one = p.pack(base);
    assert.equal(p.held(slot), undefined, 'an empty slot holds nothing');
    const first = p.record('k', 'stored-k', one, readHead(one), slot);
    const held = p.held(slot);
    assert.equal(held?.stored, 'stored-k', 'the slot names the key as the table holds it');
    assert.equal(p.shared(held, one, now), first, 'the same packed string: the same record, nothing unpacked');
    assert.equal(p.shared(held, p.pack({ ...base, version: 2 }), now), undefined, 'another packed string: unpacked afresh');
    assert.equal(p.shared(held, one, base.expiresAt), undefined, 'not once its idle deadline has come');
    assert.equal(p.shared(held, one, base.absoluteExpiresAt), undefined, 'nor its absolute one');
    assert.equal(new RecordPacker().held(slot), undefined, 'another packer does not take this one\'s entry');
    // Touched: the entry follows the new string, and the record (with the old deadlines) is let go.
    const touched = p.touched(one, readHead(one), now + 5_000, now + 1, 'k');
    assert.equal(p.shared(held, touched, now), undefined);
    assert.equal(p.shared(held, one, now), undefined);
    const again = p.record('k', 'stored-k', touched, readHead(touched), slot);
    assert.notEqual(again, first);
    assert.equal(again.expiresAt, now + 5_000);
    assert.equal(p.shared(p.held(slot), touched, now), again);
    // Written: the same.
    const written = p.pack({ ...base, data: '{"d":{"n":9}}', version: 2 }, 'k');
    assert.equal(p.shared(p.held(slot), written, now), undefined);
    assert.equal(p.record('k', 'stored-k', written, readHead(written), slot).data, '{"d":{"n":9}}');
    // Pushed out of the recent entries: the slot holds nothing any more.
    for (let i = 0; i < RECENT_TEXTS.entries; i++) {
      const s = p.pack({ ...base, data: `{"i":${i}}` });
      p.record(`key-${i}`, `key-${i}`, s, readHead(s));
    }
    assert.equal(p.held(slot), undefined);
    assert.equal(p.shared(held, written, now), undefined);
  });

  it('record packer when records are written for later coding then codes each in place once WRITE_BEHIND.entries later writes came, only if it is still the one stored', () => {
    const p = trained();
    const table = new RecordTable(1 << 30, () => {});
    const coded = (s: string): boolean => (readHead(s).flags & 4) !== 0; // the CODED flag
    const session = (i: number, version = 1): PackedFields => ({ ...base, version, data: base.data.replace('10013', String(20_000 + i)) });
    const write = (i: number, version = 1): string => {
      const key = `key-${i}`;
      const stored = toStoredKey(key);
      const s = p.pack(session(i, version), key, true);
      table.put(stored, s);
      p.kept(table, stored, s);
      return s;
    };
    const at = (i: number): string => table.peek(toStoredKey(`key-${i}`))!;

    const first = write(0);
    assert.ok(!coded(first), 'written as it is');
    assert.deepEqual(unpack(p, first), session(0));
    // Read once, so a recent text and a kept record stand for the uncoded string.
    const slot: LocalSlot = { local: undefined };
    const read = p.record('key-0', toStoredKey('key-0'), first, readHead(first), slot);
    write(1);
    write(1, 2); // written again before its turn: the older string is passed over, the newer waits its own
    write(2);
    table.delete(toStoredKey('key-2')); // removed before its turn
    write(3);
    // Written again, coded at once (as when only the coded form fits the bound): the waiting string is stale.
    const newer = p.pack(session(3, 2), 'key-3');
    table.put(toStoredKey('key-3'), newer);
    p.kept(table, toStoredKey('key-3'), newer);
    // Four later writes waiting so far (the one coded at once does not wait).
    for (let i = 4; i < WRITE_BEHIND.entries - 1; i++) write(i);
    assert.equal(at(0), first, 'not yet: WRITE_BEHIND.entries - 1 later writes');
    const order = [...table.entries()].map(([k]) => k);
    const bytes = table.bytes;

    const last = write(WRITE_BEHIND.entries - 1);
    const now0 = at(0);
    assert.ok(coded(now0), 'the one that waited longest is coded');
    assert.deepEqual(unpack(p, now0), session(0), 'every field as before');
    assert.ok(now0.length < first.length);
    assert.equal(table.bytes, bytes + entryBytes(toStoredKey(`key-${WRITE_BEHIND.entries - 1}`), last) - (first.length - now0.length),
      'the bound counts the shorter string');
    assert.deepEqual([...table.entries()].map(([k]) => k).slice(0, order.length), order, 'its recency is left as it was');
    assert.equal(p.shared(p.held(slot), now0, now), read, 'the record a slot keeps still stands for the coded string');

    write(WRITE_BEHIND.entries);
    assert.ok(!coded(at(1)), 'the older string of the record written again is passed over');
    write(WRITE_BEHIND.entries + 1);
    assert.ok(coded(at(1)), 'the record written again was coded at its own turn');
    assert.deepEqual(unpack(p, at(1)), session(1, 2));
    assert.equal(table.peek(toStoredKey('key-2')), undefined, 'a removed record is not put back');
    write(WRITE_BEHIND.entries + 2);
    write(WRITE_BEHIND.entries + 3);
    assert.equal(at(3), newer, 'a record written again meanwhile is never replaced by the older one coded');
    for (let i = 4; i < 10; i++) assert.ok(!coded(at(i)), `key-${i} still waits`);
  });

  it('record packer when the records waiting to be coded pass an eighth of the table\'s bound then codes the oldest at once', () => {
    const p = trained();
    const table = new RecordTable(8 * 3_500, () => {}); // records waiting: at most 3,500 characters
    const coded = (s: string): boolean => (readHead(s).flags & 4) !== 0; // the CODED flag
    const session = (i: number): PackedFields => ({ ...base, data: JSON.stringify({ d: { i, text: 'lorem ipsum dolor sit amet '.repeat(37) } }) });
    const stored = (i: number): string => toStoredKey(`key-${i}`);
    for (let i = 0; i < 4; i++) {
      const s = p.pack(session(i), `key-${i}`, true);
      assert.ok(s.length > 1_000 && s.length < 1_100);
      table.put(stored(i), s);
      p.kept(table, stored(i), s);
    }
    assert.ok(coded(table.peek(stored(0))!), 'the oldest went first, long before WRITE_BEHIND.entries records waited');
    for (let i = 1; i < 4; i++) assert.ok(!coded(table.peek(stored(i))!), `key-${i} still waits`);
    assert.deepEqual(unpack(p, table.peek(stored(0))!), session(0));
  });
});

