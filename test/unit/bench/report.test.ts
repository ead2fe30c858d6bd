import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderReport, targetChecks } from '../../../bench/report.js';
import type { RunFile } from '../../../bench/report.js';
import { stackById } from '../../../bench/lib/stacks.js';
import type { ScenarioSummary, StackSummary } from '../../../bench/lib/summary.js';

function figures(cpuUs: number, overheadUs: number | null): ScenarioSummary {
  return {
    passes: 3, rps: Math.round(1e6 / cpuUs), p50Ms: 1.25, p99Ms: 4.5, serverCpuUs: cpuUs, serverSystemUs: 10, storeCpuUs: 0, cpuUs,
    commandsPerRequest: null, census: null, overheadUs, vsNode: { rps: 0.5, p50: 2, p99: 2.5, cpu: 2 }, non2xx: 0, errors: 0,
  };
}

function stack(id: string, read: number | null, write: number | null, race?: { lost: number; ok?: number }): StackSummary {
  const s = stackById(id);
  const results: StackSummary['results'] = {};
  if (read !== null) results.read = figures(100 + read, s.layer === 'none' ? null : read);
  if (write !== null) results.write = figures(100 + write, s.layer === 'none' ? null : write);
  return {
    id, label: s.label, framework: s.framework, layer: s.layer, store: s.store, baseline: s.baseline, results,
    ...(race ? { race: { sent: 50, ok: race.ok ?? 50, statuses: { 200: race.ok ?? 50 }, final: 50 - race.lost, lost: race.lost } } : {}),
  };
}

function run(stacks: StackSummary[], memory: RunFile['memory']): RunFile {
  return {
    bench: 'run', title: 'Side by side', generatedAt: '2026-01-02T03:04:05.000Z', quick: false, command: 'npm run bench',
    machine: { cpu: 'Test CPU', cores: 2, memoryGiB: 8, os: 'Linux x64', node: 'v20.0.0', load: [1, 2, 3] },
    versions: { tether: '0.1.0', '@fastify/session': '11.1.3' },
    config: { passes: 3, durationS: 1, warmupS: 1, connections: 10, sessions: 1000, raceWrites: 50, scenarios: ['read', 'write'] },
    leftOut: [], stacks, memory,
  };
}

/** The page renderReport writes for `file`, rendered in a temporary folder. */
function renderedPage(file: RunFile): string {
  const dir = mkdtempSync(join(tmpdir(), 'tether-report-'));
  try {
    mkdirSync(join(dir, 'results'));
    mkdirSync(join(dir, 'docs'));
    writeFileSync(join(dir, 'results', 'run.json'), JSON.stringify(file));
    writeFileSync(join(dir, 'analysis.md'), '## Analysis\n');
    renderReport({ resultsDir: join(dir, 'results'), docsDir: join(dir, 'docs'), analysis: join(dir, 'analysis.md') });
    return readFileSync(join(dir, 'docs', 'benchmarks.md'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const MEMORY: RunFile['memory'] = {
  count: 100_000, dataBytes: 200, subjects: [
    { subject: 'express-session-memory', label: 'express-session MemoryStore', bytesPerSession: 560 },
    { subject: 'tether-memory', label: 'Tether MemoryStore', bytesPerSession: 250 },
    { subject: 'tether-tiered', label: 'Tether tiered store, local cache', bytesPerSession: 300 },
  ],
} as RunFile['memory'];

test('targets: each figure is judged against its own limit, from the same run', () => {
  const t = targetChecks(run([
    stack('fastify-bare', 0, 0),
    stack('fastify-session-redis', 70, 300, { lost: 44 }),
    stack('tether-fastify-tiered-eventual', 4, 150, { lost: 0 }),
    stack('tether-fastify-tiered', 9, 151, { lost: 0 }),
    stack('tether-fastify-redis', 20, 160, { lost: 1 }),
  ], MEMORY));
  assert.deepEqual(t.reads.map((x) => [x.id, x.met]), [['tether-fastify-tiered', false], ['tether-fastify-tiered-eventual', true]]);
  assert.equal(t.fastifySessionWriteUs, 300);
  assert.deepEqual(t.writes.map((x) => [x.id, x.met]), [['tether-fastify-redis', false], ['tether-fastify-tiered', false], ['tether-fastify-tiered-eventual', true]]);
  assert.deepEqual(t.lostUpdates.map((x) => [x.id, x.met]), [['tether-fastify-tiered-eventual', true], ['tether-fastify-tiered', true], ['tether-fastify-redis', false]]);
  assert.equal(t.expressSessionBytes, 560);
  assert.deepEqual(t.memory.map((x) => [x.id, x.met]), [['tether-memory', true], ['tether-tiered', false]]);
});

test('targets: a write\'s share of the anchor\'s overhead is also paired pass by pass, and the server process alone is judged apart', () => {
  const withPasses = (s: StackSummary, byPass: number[], server: number): StackSummary => {
    s.results.write = { ...s.results.write!, overheadByPassUs: byPass, serverOverheadUs: server };
    return s;
  };
  const file = run([
    stack('fastify-bare', 0, 0),
    withPasses(stack('fastify-session-redis', 70, 300, { lost: 44 }), [300, 250, 400], 260),
    withPasses(stack('tether-fastify-redis', 20, 160, { lost: 0 }), [160, 150, 150], 110),
  ], MEMORY);
  const t = targetChecks(file);
  const w = t.writes[0]!;
  assert.equal(w.met, false);
  assert.equal(w.share!.median, 160 / 300);
  // Per pass: 160/300, 150/250, 150/400.
  assert.deepEqual(w.share!.passes, [150 / 400, 150 / 250]);
  assert.equal(t.fastifySessionServerWriteUs, 260);
  assert.deepEqual(t.serverWrites.map((x) => [x.id, x.value, x.met]), [['tether-fastify-redis', 110, true]]);
  assert.equal(t.serverWrites[0]!.share!.passes, null, 'per-pass figures are of the combined CPU only');
  const md = renderedPage(file);
  assert.match(md, /Tether Fastify \+ Redis 160 µs, 53 % \(per pass 38 %–60 %\) \(not met\)/);
  assert.match(md, /the server process's CPU alone; @fastify\/session 260 µs, so ≤ 130 µs\): Tether Fastify \+ Redis 110 µs, 42 % \(met\)/);
});

test('targets: a stack answering other statuses has not met zero lost updates, and absent anchors mean not measured', () => {
  const t = targetChecks(run([stack('tether-fastify-memory', 30, 60, { lost: 0, ok: 48 })], null));
  assert.equal(t.lostUpdates[0]!.met, false);
  assert.equal(t.fastifySessionWriteUs, null);
  assert.deepEqual(t.writes, []);
  assert.deepEqual(t.reads, []);
  assert.equal(t.floorReadUs, null);
  assert.equal(t.expressFloorRead, null);
  assert.equal(t.expressSessionBytes, null);
  assert.deepEqual(t.memory, []);
});

test('the page and chart are generated from the results files, with machine, versions and date', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-report-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const results = join(dir, 'results');
  const docs = join(dir, 'docs');
  mkdirSync(results);
  mkdirSync(docs);
  writeFileSync(join(results, 'run.json'), JSON.stringify(run([
    stack('node-bare', 0, 0),
    stack('fastify-bare', 0, 0),
    stack('fastify-session-redis', 77, 134, { lost: 49 }),
    stack('fastify-floor', 9, 12, { lost: 40 }),
    stack('express-floor', 31, 33, { lost: 41 }),
    stack('tether-fastify-tiered-eventual', 4.5, 60, { lost: 0 }),
  ], MEMORY)));
  writeFileSync(join(dir, 'analysis.md'), '## Analysis\n\nHand-written part.\n');

  const written = renderReport({ resultsDir: results, docsDir: docs, analysis: join(dir, 'analysis.md') });
  assert.deepEqual(written, [join(docs, 'benchmarks.md'), join(docs, 'benchmarks.svg')]);
  const md = readFileSync(join(docs, 'benchmarks.md'), 'utf8');
  assert.match(md, /Generated 2026-01-02 03:04:05 UTC by `npm run bench`/);
  assert.match(md, /Machine: Test CPU, 2 cores, 8 GiB, Linux x64, Node v20\.0\.0/);
  assert.match(md, /Versions: tether 0\.1\.0, @fastify\/session 11\.1\.3/);
  assert.match(md, /asks for @fastify\/session 11\.1\.6 or later; 11\.1\.3 is installed/);
  assert.match(md, /Tether Fastify \+ tiered\/Redis \(eventual\) 4\.50 µs \(met\)/);
  assert.match(md, /\(134 µs, so ≤ 67\.0 µs\), counting redis-server's CPU with the server's: Tether Fastify \+ tiered\/Redis \(eventual\) 60\.0 µs, 45 % \(met\)/);
  assert.match(md, /The floor under that target.*cost 9\.00 µs of overhead on Fastify \(1\.80× of the 5 µs limit\); the same as one Express middleware, 31\.0 µs on Express/);
  assert.match(md, /0 lost across the 1 Tether stacks → \*\*met\*\*/, 'the floor is not a Tether stack');
  assert.match(md, /\| Floor: cookie \+ SHA-256 \+ Map \(Fastify\) \| 9\.00 \| 12\.0 \| 40 of 50 \|/);
  assert.match(md, /\| @fastify\/session \+ connect-redis \| 77\.0 \| 134 \| 49 of 50 \|/);
  assert.match(md, /\| Stack \| req\/s \| ×node \| p50 ms \| p50 ×node \| p99 ms \| p99 ×node \|/);
  assert.match(md, /Hand-written part\./);
  const svg = readFileSync(join(docs, 'benchmarks.svg'), 'utf8');
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /@fastify\/session \+ connect-redis/);
  assert.match(svg, /2026-01-02/);
});

test('targets: a read overhead is judged by its median, and the page gives its lowest and highest pass beside it', () => {
  const tiered = stack('tether-fastify-tiered-eventual', 4.8, 150, { lost: 0 });
  tiered.results.read = { ...tiered.results.read!, overheadByPassUs: [6.2, 4.8, 4.1] };
  const file = run([stack('fastify-bare', 0, 0), stack('fastify-session-redis', 70, 300, { lost: 44 }), tiered], MEMORY);
  const [r] = targetChecks(file).reads;
  assert.deepEqual([r!.value, r!.met, r!.passes], [4.8, true, [4.1, 6.2]]);
  assert.match(renderedPage(file), /Tether Fastify \+ tiered\/Redis \(eventual\) 4\.80 µs \(per pass 4\.10 to 6\.20\) \(met\)/);
  tiered.results.read = { ...tiered.results.read, overheadByPassUs: [4.8] };
  assert.equal(targetChecks(file).reads[0]!.passes, null, 'one pass has no spread');
  assert.match(renderedPage(file), /Tether Fastify \+ tiered\/Redis \(eventual\) 4\.80 µs \(met\)/);
});

test('the page names the node flags the servers ran with, when there were any', () => {
  const file = run([stack('fastify-bare', 0, 0)], MEMORY);
  assert.doesNotMatch(renderedPage(file), /run as `node/, 'a run that did not record them says nothing');
  file.config.serverNodeArgs = [];
  assert.doesNotMatch(renderedPage(file), /run as `node/, 'nor one whose servers ran with none');
  file.config.serverNodeArgs = ['--perf-basic-prof', '--max-old-space-size=512'];
  assert.match(renderedPage(file), /each server runs in its own process \(run as `node --perf-basic-prof --max-old-space-size=512`\)/);
});

test('the page says a run measured each framework\'s stacks together only when it did', () => {
  const file = run([stack('fastify-bare', 0, 0)], MEMORY);
  assert.match(renderedPage(file), /in rotating order, after a 1 s warm-up/, 'a run from before the grouping says nothing of it');
  file.config.grouped = true;
  assert.match(renderedPage(file), /in rotating order, each framework's stacks together around the framework without sessions, after a 1 s warm-up/);
});
