/**
 * A canonical Huffman code over bytes, built once from a sample of a store's own data, so MemoryStore
 * can hold session text in about 60 % of its bytes (JSON text carries 4–5 bits of information per
 * character) for a few hundred nanoseconds per record.
 * @module
 */

/** Longest code: decoding looks up MAX_BITS bits at a time in one table of 2^MAX_BITS entries. */
export const MAX_BITS = 12;
const TABLE_MASK = (1 << MAX_BITS) - 1;
/** Set in a `#pairs` entry that holds two bytes. */
const PAIR = 1 << 24;

export class ByteCode {
  /** Per byte value: its length in bits, and `code << 4 | length` (the code right-aligned). */
  readonly #lengths = new Uint8Array(256);
  readonly #symbols = new Uint32Array(256);
  /** Indexed by the next MAX_BITS bits of input: `symbol << 4 | length`. */
  readonly #table = new Uint16Array(1 << MAX_BITS);
  /**
   * The same index, for decoding two bytes per lookup where both codes fit in MAX_BITS bits:
   * `first | second << 8 | bits used << 16 | 1 << 24 when there is a second`.
   */
  readonly #pairs = new Uint32Array(1 << MAX_BITS);

  /**
   * The code for byte frequencies `counts` (256 entries). Every byte gets a code, also the ones the
   * sample never showed, so any input stays encodable.
   */
  constructor(counts: ArrayLike<number>) {
    if (counts.length !== 256) throw new RangeError('ByteCode needs 256 counts');
    let weights = Array.from(counts, (c) => Math.max(1, Math.floor(c)));
    let lengths = codeLengths(weights);
    // Halving flattens the distribution; it ends at most at eight bits for every byte.
    while (Math.max(...lengths) > MAX_BITS) {
      weights = weights.map((w) => Math.max(1, w >>> 1));
      lengths = codeLengths(weights);
    }
    this.#assign(lengths);
  }

  /** Bits the code spends on byte `b`. */
  bitsOf(b: number): number {
    return this.#lengths[b]!;
  }

  /**
   * Writes the code of `src[0, n)` into `dst` from `at`, padding the last byte with zero bits.
   * Returns the end offset, or -1 as soon as the output would pass `limit` (the caller then keeps
   * the bytes as they are). `dst` must have room up to `limit`.
   */
  encode(src: Uint8Array, n: number, dst: Uint8Array, at: number, limit: number): number {
    const symbols = this.#symbols;
    let acc = 0;
    let bits = 0;
    let o = at;
    for (let i = 0; i < n; i++) {
      const sym = symbols[src[i]!]!;
      // At most 15 bits wait before this, so at most 27 after: within a 32-bit integer.
      acc = (acc << (sym & 15)) | (sym >>> 4);
      bits += sym & 15;
      if (bits >= 16) {
        if (o + 2 > limit) return -1;
        bits -= 16;
        // Typed-array stores keep the low 8 bits.
        dst[o++] = acc >>> (bits + 8);
        dst[o++] = acc >>> bits;
        acc &= (1 << bits) - 1;
      }
    }
    for (; bits > 0; bits -= 8) {
      if (o >= limit) return -1;
      dst[o++] = bits >= 8 ? acc >>> (bits - 8) : acc << (8 - bits);
    }
    return o;
  }

  /** Decodes `n` bytes from the code held in `s` (one byte per character) from index `from` into `out`. */
  decode(s: string, from: number, out: Uint8Array, n: number): void {
    const pairs = this.#pairs;
    const lengths = this.#lengths;
    const end = s.length;
    let p = from;
    let acc = 0;
    let bits = 0;
    let o = 0;
    // Fast loop: two input bytes per refill, up to two output bytes per lookup, no bounds checks.
    while (o + 1 < n) {
      if (bits < MAX_BITS) {
        if (p + 2 > end) break;
        acc = ((acc << 16) | (s.charCodeAt(p) << 8) | s.charCodeAt(p + 1)) & 0x7ffffff;
        p += 2;
        bits += 16;
      }
      const entry = pairs[(acc >>> (bits - MAX_BITS)) & TABLE_MASK]!;
      out[o] = entry;
      if (entry >= PAIR) {
        out[o + 1] = entry >>> 8;
        o += 2;
        bits -= (entry >>> 16) & 0xff;
      } else {
        o++;
        bits -= lengths[entry]!;
      }
    }
    // The last bytes: past the end of `s` the padding is zeros, and `n` says where the text stops.
    while (o < n) {
      while (bits < MAX_BITS) {
        acc = ((acc << 8) | (p < end ? s.charCodeAt(p) : 0)) & 0xfffff;
        p++;
        bits += 8;
      }
      const entry = pairs[(acc >>> (bits - MAX_BITS)) & TABLE_MASK]!;
      out[o++] = entry;
      bits -= lengths[entry & 0xff]!;
    }
  }

  /** Canonical codes from lengths (as in DEFLATE): shorter codes first, ties by byte value. */
  #assign(lengths: number[]): void {
    const perLength = new Array<number>(MAX_BITS + 1).fill(0);
    for (const len of lengths) perLength[len]!++;
    const next = new Array<number>(MAX_BITS + 2).fill(0);
    let code = 0;
    for (let len = 1; len <= MAX_BITS; len++) {
      code = (code + perLength[len - 1]!) << 1;
      next[len] = code;
    }
    for (let b = 0; b < 256; b++) {
      const len = lengths[b]!;
      const c = next[len]!++;
      this.#symbols[b] = (c << 4) | len;
      this.#lengths[b] = len;
      const shift = MAX_BITS - len;
      const first = c << shift;
      this.#table.fill((b << 4) | len, first, first + (1 << shift));
    }
    for (let i = 0; i <= TABLE_MASK; i++) {
      const one = this.#table[i]!;
      const len = one & 15;
      const two = this.#table[(i << len) & TABLE_MASK]!;
      // The second code is known only if all its bits lie inside the window.
      this.#pairs[i] = (two & 15) <= MAX_BITS - len
        ? (one >>> 4) | ((two >>> 4) << 8) | ((len + (two & 15)) << 16) | PAIR
        : one >>> 4;
    }
  }
}

/** Huffman code lengths for `weights` (all ≥ 1), by repeatedly joining the two lightest trees. */
function codeLengths(weights: readonly number[]): number[] {
  // Two-queue construction: leaves sorted by weight, joined trees come out in non-decreasing order.
  const leaves = weights.map((w, b) => ({ w, b })).sort((x, y) => x.w - y.w || x.b - y.b);
  const parent = new Int32Array(weights.length * 2).fill(-1);
  const weightOf: number[] = leaves.map((l) => l.w);
  const nodeOfLeaf = leaves.map((_, i) => i);
  let nextLeaf = 0;
  const joined: number[] = [];
  let nextJoined = 0;
  const takeLightest = (): number => {
    const leafW = nextLeaf < leaves.length ? weightOf[nextLeaf]! : Infinity;
    const joinedW = nextJoined < joined.length ? weightOf[joined[nextJoined]!]! : Infinity;
    return leafW <= joinedW ? nextLeaf++ : joined[nextJoined++]!;
  };
  for (let made = 0; made < leaves.length - 1; made++) {
    const a = takeLightest();
    const b = takeLightest();
    const node = weightOf.length;
    weightOf.push(weightOf[a]! + weightOf[b]!);
    parent[a] = node;
    parent[b] = node;
    joined.push(node);
  }
  const lengths = new Array<number>(weights.length).fill(0);
  leaves.forEach((leaf, i) => {
    let depth = 0;
    for (let n = nodeOfLeaf[i]!; parent[n]! !== -1; n = parent[n]!) depth++;
    lengths[leaf.b] = depth;
  });
  return lengths;
}
