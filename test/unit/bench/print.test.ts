import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printRun } from '../../../bench/lib/print.js';
import { summarise } from '../../../bench/lib/summary.js';
import { ID_WIDTH, STACKS, stackById } from '../../../bench/lib/stacks.js';
import type { PassFigures, StackOutcome } from '../../../bench/lib/harness.js';

function pass(cpu: number, over: Partial<PassFigures> = {}): PassFigures {
  return {
    rps: 1_000_000 / cpu, p50Ms: cpu / 100, p99Ms: cpu / 10, responses: 1000, non2xx: 0, errors: 0,
    serverCpuUs: cpu, serverSystemUs: cpu / 4, storeCpuUs: 0, commandsPerRequest: null, ...over,
  };
}

function printed(outcomes: StackOutcome[]): string[] {
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => lines.push(...String(line).split('\n'));
  try {
    printRun({ stacks: summarise(outcomes, ['read']), memory: null, config: { scenarios: ['read'] } });
  } finally {
    console.log = log;
  }
  return lines;
}

test('the console table keeps every column under its title, for the longest stack ids too', () => {
  assert.equal(ID_WIDTH, Math.max(...STACKS.map((s) => s.id.length)));
  const ids = ['node-bare', 'fastify-bare', 'express-bare', 'tether-express-tiered-eventual', 'tether-fastify-redis'];
  const lines = printed(ids.map((id, i) => ({
    stack: stackById(id),
    passes: { read: [pass(40 + i * 7, id.includes('redis') || id.includes('tiered') ? { commandsPerRequest: 1.25 } : {})] },
  })));
  const header = lines[lines.indexOf('read:') + 1]!;
  const rows = lines.filter((l) => ids.some((id) => l.startsWith(`  ${id} `)));
  assert.equal(rows.length, ids.length);
  // Titles are two or more spaces apart; where each ends, every row has the end of a figure.
  const ends = [...header.matchAll(/\S+(?: \S+)*/g)].map((m) => m.index + m[0].length);
  assert.equal(ends.length, 10);
  for (const row of rows) {
    assert.ok(row.length <= header.length, row);
    for (const end of ends) {
      assert.notEqual(row[end - 1], ' ', `a figure ends under the title at ${end}: ${row}`);
      assert.ok(end === row.length || row[end] === ' ', `nothing runs past the title at ${end}: ${row}`);
    }
    assert.match(row, new RegExp(`^  ${row.trim().split(' ')[0]} +\\d`), 'the id is followed by a space before the first figure');
  }
});
