/**
 * Typing the session by declaration merging, as @fastify/session's `Session` interface is typed: keys an
 * app declares on `TetherSessionData` type `request.session` (tether/fastify) and `req.tether` /
 * `sessionOf(req)` (tether/express) in every route. The fixtures are compiled by tsc on their own: the
 * augmentation would otherwise reach every file of the project's program.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

const DIR = 'test/fixtures/typed-session';

/** Runs tsc on one of the fixture projects: its exit code and its diagnostics. */
function tsc(project: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['node_modules/typescript/bin/tsc', '-p', `${DIR}/${project}`, '--pretty', 'false'], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

it('session data when TetherSessionData declares keys then routes read them typed, and tsc refuses a value of the wrong type', async () => {
  const [good, bad] = await Promise.all([tsc('tsconfig.json'), tsc('tsconfig.wrong.json')]);
  assert.equal(good.code, 0, `the typed app compiles:\n${good.out}`);
  const wrongLines = readFileSync(`${DIR}/wrong.ts`, 'utf8').split('\n').flatMap((line, i) => (line.includes('// WRONG') ? [i + 1] : []));
  assert.equal(wrongLines.length, 3);
  const errorLines = [...bad.out.matchAll(/wrong\.ts\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1]));
  assert.notEqual(bad.code, 0);
  assert.deepEqual([...new Set(errorLines)].sort((a, b) => a - b), wrongLines, `one error on each wrong line and nowhere else:\n${bad.out}`);
});
