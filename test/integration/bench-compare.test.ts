/**
 * `npm run bench:compare` end to end on one stack: the base commit compiled from a git worktree, both
 * builds measured in alternating rounds, the worktree gone afterwards. Checks what the run reports,
 * not how fast either build was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT } from '../../bench/lib/procs.js';
import { BUILD_DIR } from '../../bench/lib/build.js';
import { parseCompareArgs } from '../../bench/lib/args.js';

function compare(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--conditions=tether-source', '--import', 'tsx', 'bench/compare.ts', ...args],
      { cwd: ROOT, timeout: 150_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
  });
}

const worktrees = (): string => execFileSync('git', ['worktree', 'list', '--porcelain'], { cwd: ROOT, encoding: 'utf8' });

test('bench:compare flags are checked before anything starts', async () => {
  assert.deepEqual(parseCompareArgs([]), { base: 'HEAD', only: ['tether-fastify-memory', 'tether-fastify-redis'], scenarios: ['read', 'write'], rounds: 6, durationS: 3, sessions: 1000 });
  assert.deepEqual(parseCompareArgs(['--base', 'v1', '--only', 'a', '--scenarios', 'login', '--rounds', '3', '--duration', '0.5', '--sessions', '5000']),
    { base: 'v1', only: ['a'], scenarios: ['login'], rounds: 3, durationS: 0.5, sessions: 5000 });
  assert.throws(() => parseCompareArgs(['--rounds', '0']), /--rounds needs a positive number/);
  assert.throws(() => parseCompareArgs(['--sessions', '-1']), /--sessions needs a positive number/);
  assert.throws(() => parseCompareArgs(['--scenarios', 'read,delete']), /--scenarios takes read, write, login/);
  assert.throws(() => parseCompareArgs(['--base']), /--base needs a commit/);
  assert.throws(() => parseCompareArgs(['--quick']), /unknown flag --quick/);

  const before = worktrees();
  const unknown = await compare(['--base', 'no-such-ref-anywhere']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--base no-such-ref-anywhere: no such commit/);
  const stack = await compare(['--only', 'tether-fastify-nothing']);
  assert.equal(stack.code, 2);
  assert.match(stack.stderr, /unknown stack "tether-fastify-nothing"/);
  assert.equal(worktrees(), before, 'no worktree left behind');
});

test('bench:compare measures the base commit and this checkout in alternating rounds', { timeout: 180_000 }, async () => {
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const before = worktrees();
  const r = await compare(['--only', 'tether-fastify-memory', '--scenarios', 'read', '--rounds', '2', '--duration', '0.3']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(worktrees(), before, 'the worktree is removed after the build');
  assert.ok(existsSync(`${BUILD_DIR}/compare-${head.slice(0, 12)}.mjs`), 'the base server was compiled from HEAD');

  const base = `base ${head.slice(0, 9)}`;
  const rounds = [...r.stdout.matchAll(/round (\d)\/2 read\s+tether-fastify-memory\s+(base \w+|this checkout)\s+([\d.]+) µs CPU\/req/g)]
    .map((m) => ({ round: Number(m[1]), build: m[2], cpu: Number(m[3]) }));
  // Each round measures both builds, in the opposite order to the round before.
  assert.deepEqual(rounds.map((x) => [x.round, x.build]), [[1, base], [1, 'this checkout'], [2, 'this checkout'], [2, base]]);
  for (const x of rounds) assert.ok(x.cpu > 0, `${x.build} round ${x.round}: CPU per request measured`);

  const summary = /read tether-fastify-memory\s+([\d.]+) →\s+([\d.]+)\s+change ([+-][\d.]+)\s+\(lower in (\d) of 2 rounds\)/.exec(r.stdout);
  assert.ok(summary, r.stdout);
  const cpu = (build: string): number[] => rounds.filter((x) => x.build === build).map((x) => x.cpu);
  const [b, c] = [cpu(base), cpu('this checkout')];
  // The rounds print rounded figures: a round whose two figures print alike may have gone either way.
  const lower = [0, 1].filter((i) => c[i]! < b[i]!).length;
  const notHigher = [0, 1].filter((i) => c[i]! <= b[i]!).length;
  const counted = Number(summary[4]);
  assert.ok(counted >= lower && counted <= notHigher, `rounds lower (${counted}) counted from the rounds printed (${lower} to ${notHigher})`);
  assert.ok(Math.abs(Number(summary[3]) - ((c[0]! - b[0]!) + (c[1]! - b[1]!)) / 2) < 0.11, 'the change is the median of the two differences');
});
