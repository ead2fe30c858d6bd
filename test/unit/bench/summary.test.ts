import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarise } from '../../../bench/lib/summary.js';
import { median, pairedChange, round } from '../../../bench/lib/stats.js';
import { stackById } from '../../../bench/lib/stacks.js';
import type { PassFigures, StackOutcome } from '../../../bench/lib/harness.js';

function pass(cpu: number, over: Partial<PassFigures> = {}): PassFigures {
  return {
    rps: 1_000_000 / cpu, p50Ms: cpu / 100, p99Ms: cpu / 10, responses: 1000, non2xx: 0, errors: 0,
    serverCpuUs: cpu, serverSystemUs: cpu / 4, storeCpuUs: 0, commandsPerRequest: null, ...over,
  };
}

const outcome = (id: string, read: PassFigures[]): StackOutcome => ({ stack: stackById(id), passes: { read } });

test('median ignores non-finite figures and averages the middle pair', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([NaN, 5, Infinity, 1]), 3);
  assert.ok(Number.isNaN(median([])));
});

test('round keeps three significant digits below 100 and whole numbers above', () => {
  assert.equal(round(1234.56), 1235);
  assert.equal(round(54.37), 54.4);
  assert.equal(round(5.4321), 5.43);
  assert.equal(round(0.12345), 0.123);
});

test('overhead is the median of per-pass differences with the same framework, not a difference of medians', () => {
  // Pass 2 is slow for everyone (a noisy neighbour): pairing by pass keeps it from skewing the overhead.
  const fastify = [pass(60), pass(120), pass(62)];
  const tether = [pass(70), pass(135), pass(71)];
  const [node, bare, ours] = summarise([
    outcome('node-bare', [pass(50), pass(100), pass(52)]),
    outcome('fastify-bare', fastify),
    outcome('tether-fastify-memory', tether),
  ], ['read']);
  assert.equal(ours!.results.read!.overheadUs, 10); // differences 10, 15, 9
  assert.equal(ours!.results.read!.cpuUs, 71);
  assert.equal(bare!.results.read!.overheadUs, null, 'a bare framework has no session overhead');
  assert.equal(node!.results.read!.vsNode!.cpu, 1);
  assert.equal(ours!.results.read!.vsNode!.cpu, round(median([70 / 50, 135 / 100, 71 / 52])));
  assert.equal(ours!.results.read!.vsNode!.rps, round(median([50 / 70, 100 / 135, 52 / 71])));
});

test('store CPU counts in the figures overhead and ratios use, and errors are summed over passes', () => {
  const [, , ours] = summarise([
    outcome('node-bare', [pass(50), pass(50)]),
    outcome('fastify-bare', [pass(60), pass(60)]),
    outcome('tether-fastify-redis', [pass(100, { storeCpuUs: 20, commandsPerRequest: 2, non2xx: 1 }), pass(100, { storeCpuUs: 30, commandsPerRequest: 2, errors: 2 })]),
  ], ['read']);
  const r = ours!.results.read!;
  assert.equal(r.serverCpuUs, 100);
  assert.equal(r.storeCpuUs, 25);
  assert.equal(r.cpuUs, 125);
  assert.equal(r.overheadUs, 65);
  assert.deepEqual(r.overheadByPassUs, [60, 70], 'each pass against the same pass of the bare framework');
  assert.equal(r.serverOverheadUs, 40, 'the server process alone leaves redis-server out');
  assert.equal(r.commandsPerRequest, 2);
  assert.equal(r.non2xx, 1);
  assert.equal(r.errors, 2);
});

test('a stack whose baseline did not run has no overhead, and a scenario with no passes is left out', () => {
  const [ours] = summarise([
    { stack: stackById('tether-express-memory'), passes: { read: [pass(300)], write: [] } },
  ], ['read', 'write']);
  assert.equal(ours!.results.read!.overheadUs, null);
  assert.equal(ours!.results.read!.vsNode, null);
  assert.equal(ours!.results.write, undefined);
});

test('pairedChange takes the median of round-by-round differences and counts the rounds that went down', () => {
  // The medians of the two builds differ by 1, but every round went down by 2 or more: the pairs say so.
  const c = pairedChange([50, 60, 52, 70, 55], [48, 57, 50, 66, 53]);
  assert.deepEqual(c, { base: 55, current: 53, change: -2, lower: 5, rounds: 5 });
  assert.deepEqual(pairedChange([10, 10, 10, 10], [11, 9, 12, 10]), { base: 10, current: 10.5, change: 0.5, lower: 1, rounds: 4 });
  // Extra figures of one build (a round cut short) are left out of the pairs.
  assert.equal(pairedChange([1, 2, 3], [2, 3]).rounds, 2);
});
