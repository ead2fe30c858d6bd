/** ByteCode: the trained Huffman code MemoryStore packs data with round-trips any bytes and stays bounded. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ByteCode, MAX_BITS } from '../../../src/stores/memory/byte-code.js';

function countsOf(...texts: string[]): number[] {
  const counts = new Array<number>(256).fill(0);
  for (const t of texts) for (const b of Buffer.from(t, 'latin1')) counts[b]!++;
  return counts;
}

function roundTrip(code: ByteCode, bytes: Uint8Array): { coded: number; back: Buffer } {
  const dst = Buffer.alloc(bytes.length * 2 + 16);
  const end = code.encode(bytes, bytes.length, dst, 3, dst.length);
  assert.ok(end >= 3, 'encoded within the room given');
  const text = dst.toString('latin1', 0, end);
  const back = Buffer.alloc(bytes.length);
  code.decode(text, 3, back, bytes.length);
  return { coded: end - 3, back };
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const json = '{"d":{"cart":[{"sku":"SKU-10013","qty":1,"price":1999}],"prefs":{"theme":"light","lang":"en-GB"},"n":0}}';

describe('ByteCode', () => {
  it('byte code when trained on JSON then codes similar JSON in about two thirds of its bytes and decodes it exactly', () => {
    const sample = Array.from({ length: 100 }, (_, i) => json.replace('10013', String(10_000 + i * 37)).replace('light', i % 2 ? 'dark' : 'light'));
    const code = new ByteCode(countsOf(...sample));
    const other = Buffer.from(json.replace('10013', '20417').replace('1999', '4550'), 'latin1');
    const { coded, back } = roundTrip(code, other);
    assert.ok(coded < other.length * 0.7, `coded ${coded} of ${other.length} bytes`);
    assert.deepEqual(back, other);
  });

  it('byte code when given bytes the sample never showed then still round-trips every byte value', () => {
    const code = new ByteCode(countsOf(json));
    const all = Uint8Array.from({ length: 256 * 3 }, (_, i) => (i * 7) % 256);
    assert.deepEqual(roundTrip(code, all).back, Buffer.from(all));
  });

  it('byte code when trained on very skewed counts then keeps every code within MAX_BITS and round-trips random input', () => {
    const counts = new Array<number>(256).fill(0);
    counts[120] = 1e9;
    counts[34] = 1e6;
    const code = new ByteCode(counts);
    for (let b = 0; b < 256; b++) assert.ok(code.bitsOf(b) >= 1 && code.bitsOf(b) <= MAX_BITS, `byte ${b}: ${code.bitsOf(b)} bits`);
    const next = random(42);
    for (let round = 0; round < 300; round++) {
      const n = Math.floor(next() * 200);
      const bytes = Uint8Array.from({ length: n }, () => (next() < 0.6 ? 120 : Math.floor(next() * 256)));
      assert.deepEqual(roundTrip(code, bytes).back, Buffer.from(bytes), `round ${round}`);
    }
  });

  it('byte code when the output would pass the limit then returns -1', () => {
    const counts = new Array<number>(256).fill(0);
    counts[97] = 1e6;
    const code = new ByteCode(counts);
    assert.ok(code.bitsOf(122) > 8);
    const rare = Buffer.from('zzzzzzzzzzzzzzzz', 'latin1');
    const dst = Buffer.alloc(64);
    assert.equal(code.encode(rare, rare.length, dst, 0, rare.length), -1);
    assert.ok(code.encode(rare, rare.length, dst, 0, 64) > rare.length);
  });

  it('byte code when decoding zero bytes then writes nothing', () => {
    const code = new ByteCode(countsOf(json));
    const out = Buffer.from([7]);
    code.decode('', 0, out, 0);
    assert.equal(out[0], 7);
  });
});
