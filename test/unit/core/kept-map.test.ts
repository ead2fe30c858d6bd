/** KeptMap keeps idle entries for their keys' next use, up to a limit, dropping the oldest idle ones first. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeptMap } from '../../../src/core/kept-map.js';

/** An entry as its owners use one: a count of users, idle at zero. */
interface Use { users: number }

function take(m: KeptMap<string, Use>, key: string): Use {
  let u = m.get(key);
  if (!u) m.set(key, (u = { users: 0 }));
  else if (u.users === 0) m.resume();
  u.users++;
  return u;
}
function give(m: KeptMap<string, Use>, u: Use): void {
  if (--u.users === 0) m.rest();
}

describe('KeptMap', () => {
  it('rest when an entry goes idle then it stays, and its next use changes the same entry', () => {
    const m = new KeptMap<string, Use>(4, (u) => u.users === 0);
    const a = take(m, 'a');
    give(m, a);
    assert.equal(m.size, 1);
    assert.equal(m.idle, 1);
    assert.equal(take(m, 'a'), a, 'the kept entry, not a new one');
    assert.equal(m.idle, 0);
  });

  it('rest past the idle limit then the oldest idle entries leave first, by insertion', () => {
    const m = new KeptMap<string, Use>(3, (u) => u.users === 0);
    for (const k of ['a', 'b', 'c']) give(m, take(m, k));
    give(m, take(m, 'a')); // used again: keeps its place, the oldest still
    give(m, take(m, 'd'));
    assert.deepEqual(['a', 'b', 'c', 'd'].filter((k) => m.get(k)), ['b', 'c', 'd']);
    give(m, take(m, 'e'));
    assert.deepEqual(['b', 'c', 'd', 'e'].filter((k) => m.get(k)), ['c', 'd', 'e']);
    assert.equal(m.idle, 3);
  });

  it('rest past the limit when the oldest entries are in use then only idle ones leave, and those in use keep their state', () => {
    const m = new KeptMap<string, Use>(2, (u) => u.users === 0);
    const held = ['h1', 'h2', 'h3'].map((k) => take(m, k));
    for (let i = 0; i < 100; i++) give(m, take(m, `k${i}`));
    assert.equal(m.size, 5, 'three in use, two idle');
    assert.equal(m.idle, 2);
    held.forEach((u, i) => assert.equal(m.get(`h${i + 1}`), u, `h${i + 1} kept, in use`));
    assert.ok(m.get('k98') && m.get('k99') && !m.get('k97'), 'the two newest idle ones stay');
    for (const u of held) give(m, u);
    assert.equal(m.idle, 2, 'each held one went idle in turn, and the oldest idle ones left');
    assert.equal(m.size, 2);
  });

  it('a long random run then never holds more than the limit of idle entries, and its count of them is exact', () => {
    const m = new KeptMap<string, Use>(16, (u) => u.users === 0);
    const inUse: Use[] = [];
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 20_000; i++) {
      if (inUse.length > 0 && rnd(2) === 0) give(m, inUse.splice(rnd(inUse.length), 1)[0]!);
      else inUse.push(take(m, `k${rnd(200)}`));
      const idle = [...m.values()].filter((u) => u.users === 0).length;
      assert.equal(m.idle, idle);
      assert.ok(idle <= 16);
    }
    for (const u of inUse) assert.ok(u.users > 0 && [...m.values()].includes(u), 'every entry in use is still there');
  });

  it('clear then drops every entry and the idle count', () => {
    const m = new KeptMap<string, Use>(4, (u) => u.users === 0);
    give(m, take(m, 'a'));
    take(m, 'b');
    m.clear();
    assert.equal(m.size, 0);
    assert.equal(m.idle, 0);
  });
});
