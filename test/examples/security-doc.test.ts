/**
 * docs/security.md answers each requirement of the project's security bar with the tests that check
 * it: every row is there, and every test it names exists under that title in that file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

const DOC = 'docs/security.md';
const doc = readFileSync(DOC, 'utf8');

/** The first cell of every table row. */
const rowIds = [...doc.matchAll(/^\| (S\d+|F\d+) \|/gm)].map((m) => m[1]!);
/** Every reference `file` › "part of a test's title". */
const refs = [...doc.matchAll(/`([^`]+\.ts)` › "([^"]+)"/g)].map((m) => ({ file: m[1]!, title: m[2]! }));

/** The titles a test file gives its tests and suites (it, test, describe), template parts as written. */
function titlesIn(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/\b(?:it|test|describe)\(\s*(['"`])((?:\\.|(?!\1).)*)\1/g)].map((m) => m[2]!.replace(/\\(.)/g, '$1'));
}

describe('docs/security.md', () => {
  it('security.md when read then answers S1 to S53 and F1 to F15, each once', () => {
    const want = [...Array.from({ length: 53 }, (_, i) => `S${i + 1}`), ...Array.from({ length: 15 }, (_, i) => `F${i + 1}`)];
    assert.deepEqual([...rowIds].sort(), [...want].sort());
  });

  it('security.md when it names a test then that file has a test whose title holds the words quoted', () => {
    assert.ok(refs.length >= 68, `${refs.length} references`);
    const titles = new Map<string, string[]>();
    for (const { file, title } of refs) {
      assert.ok(existsSync(file), `${file} does not exist`);
      if (!titles.has(file)) titles.set(file, titlesIn(file));
      assert.ok(titles.get(file)!.some((t) => t.includes(title)), `${file} has no test titled with "${title}"`);
    }
  });
});
