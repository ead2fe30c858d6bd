/**
 * How MemoryStore lays out one record: a single flat string of bytes (one per character, so V8 keeps
 * it at one heap byte per character) holding a small header and the data, Huffman-coded once the
 * store has learned its byte frequencies (only counts are kept, never text). A typical 207-character
 * session becomes a string of about 165 characters (168 heap bytes); with its key and map slot the
 * store holds it in about 255 heap bytes, where objects per field took 512. A write's data is coded
 * behind it (WRITE_BEHIND), so the last few thousand records written may still be uncoded.
 *
 * Layout, byte by byte: flags; the numbers (varints of version, createdAt, lastSeenAt − createdAt,
 * expiresAt − lastSeenAt, absoluteExpiresAt − createdAt; or, for any value that is not a
 * non-negative safe integer in that order, the five as float64, so every number comes back exactly);
 * the owner (varint byte length + bytes) when there is one; when coded, the data's byte length as a
 * varint; then the data's bytes, coded or as they are.
 * @module
 */
import type { LocalSlot, SessionRecord } from '../../core/store.js';
import { isExpired } from '../../core/store.js';
import { ByteCode } from './byte-code.js';
import { fromStoredKey } from './keys.js';
import type { RecordTable } from './table.js';
import { OldestFirst } from '../../core/oldest-first.js';

const TEXT = 3;
/** The data's bytes: ASCII (read back one byte per character), UTF-8, or UTF-16LE code units. */
const ASCII = 0;
const UTF8 = 1;
const UTF16 = 2;
const CODED = 4;
const WIDE = 8;
/** The owner: none, one byte per character, or UTF-16LE code units. */
const OWNER_SHIFT = 4;
const OWNER_LATIN1 = 1;
const OWNER_UTF16 = 2;
const ENCODINGS = ['latin1', 'utf8', 'utf16le'] as const;

/** Scratch buffers grow up to this size and are kept; a bigger record gets a buffer of its own. */
const SCRATCH_KEPT = 64 * 1024;

/**
 * Data texts the packer unpacked last, kept by key with the packed string each came from: a session
 * read again before it changes costs a lookup instead of decoding its bytes. Bounded by count
 * (oldest first) and by text length; an entry is used only while its packed string is the stored one.
 */
export const RECENT_TEXTS = { entries: 1024, maxChars: 4096 } as const;

/**
 * Writes whose data is coded later (write-behind): a record is written with its data as it is, and
 * coded in place once `entries` later writes of the same table have come after it, if it is still the
 * record stored. A session written again before then (a busy one) skips the coding that would have
 * been thrown away: its older string is passed over at its turn. At most `entries` records are held
 * uncoded, a few dozen bytes more each. The records waiting (some perhaps written again or removed
 * from the table meanwhile, still referenced until their turn) also hold at most `maxChars`
 * characters, and at most an eighth of the table's bound: the oldest go first.
 */
export const WRITE_BEHIND = { entries: 2048, maxChars: 1024 * 1024 } as const;

/** Records whose bytes train the code, and how many bytes of each count: one big record cannot skew it. */
export const TRAINING = { records: 128, bytesPerRecord: 1024 } as const;

/** The fields of a stored record except its key and data; `body` is where the rest begins. */
export class Head {
  flags = 0;
  version = 0;
  createdAt = 0;
  lastSeenAt = 0;
  expiresAt = 0;
  absoluteExpiresAt = 0;
  userId: string | null = null;
  /** Where the owner begins (the end of the numbers). */
  owner = 0;
  /** Where the data's bytes begin. */
  body = 0;
  /** The data's length in bytes before coding (coded records only). */
  size = 0;
}

/** What a packed record holds: a session record but its key, which the table keeps. */
export type PackedFields = Omit<SessionRecord, 'key'>;

/** Reads a stored record's header. */
export function readHead(s: string): Head {
  const h = new Head();
  h.flags = s.charCodeAt(0);
  h.body = 1;
  if (h.flags & WIDE) {
    const at = h.body;
    h.version = float64(s, at);
    h.createdAt = float64(s, at + 8);
    h.lastSeenAt = float64(s, at + 16);
    h.expiresAt = float64(s, at + 24);
    h.absoluteExpiresAt = float64(s, at + 32);
    h.body = at + 40;
  } else {
    h.version = varint(s, h);
    h.createdAt = varint(s, h);
    h.lastSeenAt = h.createdAt + varint(s, h);
    h.expiresAt = h.lastSeenAt + varint(s, h);
    h.absoluteExpiresAt = h.createdAt + varint(s, h);
  }
  h.owner = h.body;
  const owner = (h.flags >>> OWNER_SHIFT) & 3;
  if (owner !== 0) {
    const bytes = varint(s, h);
    const at = h.body;
    h.body = at + bytes;
    h.userId = owner === OWNER_LATIN1 ? s.slice(at, at + bytes) : decodeBytes(s, at, bytes, 'utf16le');
  }
  if (h.flags & CODED) h.size = varint(s, h);
  return h;
}

/**
 * A recent text: `text` is the data packed in `packed` (never empty while the entry is kept) for the
 * key the table holds as `stored`. `record` is the whole record last unpacked from `packed` for a
 * caller's slot (SessionStore.getLocal), handed to that slot's later calls while `packed` stays.
 */
export class RecentText {
  record: SessionRecord | null = null;
  constructor(readonly owner: RecordPacker, readonly stored: string, public packed: string, public text: string) {}
}

/**
 * Packs records into strings and back. One per store: it owns the scratch buffers and the code it
 * trains on the first TRAINING.records records' data; records packed before that stay uncoded.
 */
export class RecordPacker {
  #in = Buffer.allocUnsafeSlow(1024);
  #out = Buffer.allocUnsafeSlow(1024);
  #code: ByteCode | null = null;
  #counts: number[] | null = new Array<number>(256).fill(0);
  #sampled = 0;
  readonly #recent = new Map<string, RecentText>();
  readonly #oldestRecent = new OldestFirst<string, RecentText>();
  /**
   * The uncoded packed strings written (WRITE_BEHIND), oldest first, with the stored keys they were
   * written under: a ring of `entries` + 1 slots from #waitFirst, #waiting long. A ring and not a Map
   * by key: a delete and an insert per write left holes a Map of thousands of entries had to rehash.
   */
  readonly #waitKeys: Array<string | undefined> = new Array<string | undefined>(WRITE_BEHIND.entries + 1);
  readonly #waitStrings: Array<string | undefined> = new Array<string | undefined>(WRITE_BEHIND.entries + 1);
  #waitFirst = 0;
  #waiting = 0;
  /** Characters of the strings waiting. */
  #uncodedChars = 0;

  /** Whether data is being coded yet (the code is trained). */
  get coding(): boolean {
    return this.#code !== null;
  }

  /**
   * The packed string of `r`; with `key`, a recent text kept for that key (RECENT_TEXTS) follows the new
   * string. With `later`, the data is left uncoded, to be coded by `kept` (WRITE_BEHIND).
   */
  pack(r: PackedFields, key?: string, later = false): string {
    const { data, userId } = r;
    const input = this.#input(data.length * 3);
    let text: number;
    let n: number;
    if (isWellFormed(data)) {
      n = input.write(data, 0, 'utf8');
      text = n === data.length ? ASCII : UTF8;
    } else {
      n = input.write(data, 0, 'utf16le');
      text = UTF16;
    }
    if (this.#counts) this.#learn(input, n);

    const ownerLatin1 = userId === null || isLatin1(userId);
    const ownerBytes = userId === null ? 0 : ownerLatin1 ? userId.length : userId.length * 2;
    const out = this.#output(64 + ownerBytes + n);
    let flags = text | (compact(r) ? 0 : WIDE);
    let o = putNumbers(out, flags, r);
    if (userId !== null) {
      flags |= (ownerLatin1 ? OWNER_LATIN1 : OWNER_UTF16) << OWNER_SHIFT;
      o = putVarint(out, o, ownerBytes);
      o += out.write(userId, o, ownerLatin1 ? 'latin1' : 'utf16le');
    }
    // Coded only when strictly shorter, length included.
    const coded = this.#code && n > 0 && !later ? this.#code.encode(input, n, out, putVarint(out, o, n), o + n - 1) : -1;
    if (coded >= 0) {
      flags |= CODED;
      o = coded;
    } else {
      o += input.copy(out, o, 0, n);
    }
    out[0] = flags;
    const packed = out.toString('latin1', 0, o);
    if (key !== undefined) this.#follow(key, packed, data);
    return packed;
  }

  /**
   * After `table` stored `packed` under `stored` (`key`'s form): a record whose data is uncoded while
   * the code exists waits its turn, and the one that waited longest, once WRITE_BEHIND.entries more were
   * written after it, is coded in place when the table still holds that very string (not rewritten,
   * touched, removed or pushed out meanwhile; otherwise it is passed over). Its recency is left as it
   * is, and so is a recent text kept for it.
   */
  kept(table: RecordTable, stored: string, packed: string): void {
    if (this.#code === null || packed.charCodeAt(0) & CODED) return;
    const slots = this.#waitKeys.length;
    const at = (this.#waitFirst + this.#waiting) % slots;
    this.#waitKeys[at] = stored;
    this.#waitStrings[at] = packed;
    this.#waiting++;
    this.#uncodedChars += packed.length;
    const maxChars = Math.min(WRITE_BEHIND.maxChars, table.maxBytes / 8);
    while (this.#waiting > WRITE_BEHIND.entries || this.#uncodedChars > maxChars) {
      const first = this.#waitFirst;
      const oldest = this.#waitKeys[first]!;
      const s = this.#waitStrings[first]!;
      this.#waitKeys[first] = undefined;
      this.#waitStrings[first] = undefined;
      this.#waitFirst = (first + 1) % slots;
      this.#waiting--;
      this.#uncodedChars -= s.length;
      if (table.peek(oldest) === s) this.#codeInPlace(table, oldest, s);
    }
  }

  /** Replaces the uncoded record `s` under `stored` by its coded form, when that is shorter. */
  #codeInPlace(table: RecordTable, stored: string, s: string): void {
    const coded = this.#coded(s);
    if (coded === undefined) return;
    table.replace(stored, coded);
    const hit = this.#recent.get(fromStoredKey(stored));
    if (hit !== undefined && hit.packed === s) hit.packed = coded;
  }

  /** The uncoded record `s` with its data coded, or undefined when coding would not make it shorter. */
  #coded(s: string): string | undefined {
    const h = readHead(s);
    const n = s.length - h.body;
    if (n === 0) return undefined;
    const input = this.#input(n);
    input.write(s.slice(h.body), 0, 'latin1');
    const out = this.#output(h.body + 10 + n);
    const o = out.write(s.slice(0, h.body), 0, 'latin1');
    const end = this.#code!.encode(input, n, out, putVarint(out, o, n), o + n - 1);
    if (end < 0) return undefined;
    out[0] = h.flags | CODED;
    return out.toString('latin1', 0, end);
  }

  /** The data of the record stored as `s`, whose header is `h`. */
  data(s: string, h: Head): string {
    const encoding = ENCODINGS[h.flags & TEXT]!;
    if (!(h.flags & CODED)) {
      return (h.flags & TEXT) === ASCII ? s.slice(h.body) : decodeBytes(s, h.body, s.length - h.body, encoding);
    }
    const n = h.size;
    const bytes = this.#input(n);
    // A coded record exists only once the code does; it never changes afterwards.
    this.#code!.decode(s, h.body, bytes, n);
    return bytes.toString(encoding, 0, n);
  }

  /**
   * The whole record stored as `s` under `key` (the table's `stored`), whose header is `h`: a new
   * object. Without `slot` the caller owns it. With `slot` (the caller's for this key), the recent text
   * found or kept is left there, tried first, and keeps the record for `shared` to hand out again: the
   * caller must not change it.
   */
  record(key: string, stored: string, s: string, h: Head, slot?: LocalSlot): SessionRecord {
    const rec: SessionRecord = {
      key, data: this.#recentData(key, stored, s, h, slot), version: h.version, userId: h.userId, createdAt: h.createdAt,
      lastSeenAt: h.lastSeenAt, expiresAt: h.expiresAt, absoluteExpiresAt: h.absoluteExpiresAt,
    };
    // #recentData left this packer's entry for `s` in the slot, or nothing.
    if (slot?.local !== undefined) (slot.local as RecentText).record = rec;
    return rec;
  }

  /** The entry `slot` holds from this packer, while it is kept: its `stored` names the slot's key in the table. */
  held(slot: LocalSlot | undefined): RecentText | undefined {
    const held = slot?.local;
    return held instanceof RecentText && held.owner === this && held.packed !== '' ? held : undefined;
  }

  /**
   * The record `held` keeps, when the table holds `s` for its key and that is the very packed string
   * the record came from, and the record is live at `now`: a returning read unpacks nothing.
   */
  shared(held: RecentText | undefined, s: string, now: number): SessionRecord | undefined {
    const rec = held?.record;
    return rec != null && held!.packed === s && !isExpired(rec, now) ? rec : undefined;
  }

  /** The record `s` with new lastSeenAt and expiresAt; owner and data are copied as they are (and, with `key`, its recent text follows). */
  touched(s: string, h: Head, expiresAt: number, lastSeenAt: number, key?: string): string {
    const fields = { version: h.version, createdAt: h.createdAt, lastSeenAt, expiresAt, absoluteExpiresAt: h.absoluteExpiresAt };
    const out = this.#output(41 + s.length);
    const flags = (h.flags & ~WIDE) | (compact(fields) ? 0 : WIDE);
    let o = putNumbers(out, flags, fields);
    o += out.write(s.slice(h.owner), o, 'latin1');
    const packed = out.toString('latin1', 0, o);
    if (key !== undefined) {
      const hit = this.#recent.get(key);
      if (hit !== undefined && hit.packed === s) {
        hit.packed = packed;
        hit.record = null;
      }
    }
    return packed;
  }

  /** `data(s, h)`, from the texts unpacked last when `s` is the very string one came from (see RECENT_TEXTS). */
  #recentData(key: string, stored: string, s: string, h: Head, slot: LocalSlot | undefined): string {
    const held = slot?.local;
    if (held instanceof RecentText && held.owner === this && held.packed === s) return held.text;
    let hit = this.#recent.get(key);
    if (hit === undefined || hit.packed !== s) {
      const text = this.data(s, h);
      hit = this.#remember(key, hit, s, text, stored);
      if (hit === undefined) {
        if (slot !== undefined) slot.local = undefined;
        return text;
      }
    }
    if (slot !== undefined) slot.local = hit;
    return hit.text;
  }

  /**
   * A key read recently was written: its entry now stands for the new packed string. Keys not read
   * recently are left out, so writes (every new session's first) do not fill the entries.
   */
  #follow(key: string, packed: string, text: string): void {
    const hit = this.#recent.get(key);
    if (hit !== undefined) this.#remember(key, hit, packed, text);
  }

  /**
   * Points `key`'s entry (`hit`, if any) at `packed` and its text, or adds one when given the key's
   * form in the table (`stored`); too long a
   * text is not kept. Returns the entry that now holds the text, if any. An entry that leaves is emptied,
   * so a slot still holding it neither matches nor keeps its strings alive.
   */
  #remember(key: string, hit: RecentText | undefined, packed: string, text: string, stored?: string): RecentText | undefined {
    if (text.length > RECENT_TEXTS.maxChars) {
      if (hit !== undefined) this.#forget(key, hit);
      return undefined;
    }
    if (hit !== undefined) {
      hit.packed = packed;
      hit.text = text;
      hit.record = null;
      return hit;
    }
    if (stored === undefined) return undefined;
    if (this.#recent.size >= RECENT_TEXTS.entries) {
      RecordPacker.#empty(this.#oldestRecent.shift(this.#recent)![1]);
    }
    const entry = new RecentText(this, stored, packed, text);
    this.#recent.set(key, entry);
    return entry;
  }

  #forget(key: string, entry: RecentText): void {
    this.#recent.delete(key);
    RecordPacker.#empty(entry);
  }

  /** Empties an entry that has left the Map, so a slot still holding it neither matches nor keeps its strings alive. */
  static #empty(entry: RecentText): void {
    entry.packed = '';
    entry.text = '';
    entry.record = null;
  }

  #input(size: number): Buffer {
    if (size <= this.#in.length) return this.#in;
    return size <= SCRATCH_KEPT ? (this.#in = Buffer.allocUnsafeSlow(size)) : Buffer.allocUnsafeSlow(size);
  }

  #output(size: number): Buffer {
    if (size <= this.#out.length) return this.#out;
    return size <= SCRATCH_KEPT ? (this.#out = Buffer.allocUnsafeSlow(size)) : Buffer.allocUnsafeSlow(size);
  }

  #learn(bytes: Buffer, n: number): void {
    const counts = this.#counts!;
    const end = Math.min(n, TRAINING.bytesPerRecord);
    for (let i = 0; i < end; i++) counts[bytes[i]!]!++;
    if (++this.#sampled < TRAINING.records) return;
    this.#code = new ByteCode(counts);
    this.#counts = null;
  }
}

type Numbers = Pick<PackedFields, 'version' | 'createdAt' | 'lastSeenAt' | 'expiresAt' | 'absoluteExpiresAt'>;

/** Writes `flags` and the numbers from offset 0; returns where the owner goes. */
function putNumbers(out: Buffer, flags: number, r: Numbers): number {
  out[0] = flags;
  if (flags & WIDE) {
    let o = 1;
    for (const v of [r.version, r.createdAt, r.lastSeenAt, r.expiresAt, r.absoluteExpiresAt]) o = out.writeDoubleLE(v, o);
    return o;
  }
  let o = putVarint(out, 1, r.version);
  o = putVarint(out, o, r.createdAt);
  o = putVarint(out, o, r.lastSeenAt - r.createdAt);
  o = putVarint(out, o, r.expiresAt - r.lastSeenAt);
  return putVarint(out, o, r.absoluteExpiresAt - r.createdAt);
}

/** True when every number fits the varint form: non-negative safe integers, times in their usual order. */
function compact(r: Numbers): boolean {
  return whole(r.version) && whole(r.createdAt) && whole(r.lastSeenAt) && whole(r.expiresAt) && whole(r.absoluteExpiresAt)
    && r.lastSeenAt >= r.createdAt && r.expiresAt >= r.lastSeenAt && r.absoluteExpiresAt >= r.createdAt;
}

function whole(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0);
}

/** Seven bits per byte, low first; arithmetic rather than bit operations, as times exceed 32 bits. */
function putVarint(buf: Buffer, o: number, v: number): number {
  while (v >= 128) {
    buf[o++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[o++] = v;
  return o;
}

/** Reads a varint at `h.body` and moves `h.body` past it. */
function varint(s: string, h: Head): number {
  let p = h.body;
  let c = s.charCodeAt(p++);
  let v = c & 127;
  let scale = 128;
  while (c >= 128) {
    c = s.charCodeAt(p++);
    v += (c & 127) * scale;
    scale *= 128;
  }
  h.body = p;
  return v;
}

const wide = Buffer.allocUnsafeSlow(8);
function float64(s: string, at: number): number {
  wide.write(s.slice(at, at + 8), 0, 'latin1');
  return wide.readDoubleLE(0);
}

function decodeBytes(s: string, at: number, n: number, encoding: BufferEncoding): string {
  const buf = Buffer.allocUnsafe(n);
  buf.write(s.slice(at, at + n), 0, 'latin1');
  return buf.toString(encoding, 0, n);
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** No lone surrogates, so UTF-8 gives the same string back (Node 20 has the method; ES2023 types do not). */
function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}
