import { test } from 'node:test';
import assert from 'node:assert/strict';
import { passOrder } from '../../../bench/lib/harness.js';
import { STACKS } from '../../../bench/lib/stacks.js';
import type { StackSpec } from '../../../bench/lib/stacks.js';

const same = (s: StackSpec): StackSpec => s;

test('a pass measures every stack once, each framework\'s stacks together around its bare baseline', () => {
  for (let pass = 0; pass < 12; pass++) {
    const order = passOrder(STACKS, same, pass);
    assert.deepEqual([...order].map((s) => s.id).sort(), STACKS.map((s) => s.id).sort(), `pass ${pass}: each stack once`);
    for (const [i, s] of order.entries()) {
      const base = order.findIndex((b) => b.id === s.baseline);
      const group = order.filter((b) => b.baseline === s.baseline).length;
      assert.ok(Math.abs(i - base) <= Math.ceil((group - 1) / 2), `pass ${pass}: ${s.id} at ${i}, its baseline at ${base}`);
      // Contiguous: everything between a stack and its baseline shares that baseline.
      for (let j = Math.min(i, base); j <= Math.max(i, base); j++) assert.equal(order[j]!.baseline, s.baseline);
    }
  }
  // With the full list the farthest stack is four measurements from its baseline (a plain rotation: up to 17).
  const gaps = STACKS.map((s) => {
    const order = passOrder(STACKS, same, 0);
    return Math.abs(order.indexOf(s) - order.findIndex((b) => b.id === s.baseline));
  });
  assert.equal(Math.max(...gaps), 4);
});

test('over as many passes as a group has stacks, each of them takes every place once, and the groups turn', () => {
  const fastify = STACKS.filter((s) => s.baseline === 'fastify-bare' && s.id !== 'fastify-bare');
  const places = new Map<string, Set<number>>(fastify.map((s) => [s.id, new Set()]));
  const firstGroups = new Set<string>();
  for (let pass = 0; pass < fastify.length; pass++) {
    const order = passOrder(STACKS, same, pass);
    const group = order.filter((s) => s.baseline === 'fastify-bare');
    group.forEach((s, i) => places.get(s.id)?.add(i));
    firstGroups.add(order[0]!.baseline);
  }
  for (const [id, seen] of places) assert.equal(seen.size, fastify.length, `${id} took every place but the baseline's`);
  assert.equal(firstGroups.size, 3, 'each framework goes first in some pass');
});

test('a partial selection keeps its order rules; a stack whose baseline is missing forms its own group', () => {
  const picked = STACKS.filter((s) => ['node-bare', 'fastify-bare', 'tether-fastify-memory', 'fastify-session-redis', 'tether-express-memory'].includes(s.id));
  const order = passOrder(picked, same, 1).map((s) => s.id);
  assert.equal(order.length, 5);
  const i = order.indexOf('fastify-bare');
  assert.deepEqual(order.slice(i - 1, i + 2).sort(), ['fastify-bare', 'fastify-session-redis', 'tether-fastify-memory'].sort());
  assert.ok(order.includes('tether-express-memory'));
});
