/** npm run bench's flags: --sessions sets how many sessions the reads and writes rotate over (bench:compare's: test/integration/bench-compare.test.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../../bench/lib/args.js';

describe('bench flags', () => {
  it('parseArgs when --sessions is given then it is kept, and left unset otherwise', () => {
    assert.equal(parseArgs(['--sessions', '20000']).sessions, 20_000);
    assert.equal(parseArgs(['--quick']).sessions, undefined);
  });

  it('parseArgs when --sessions is not a positive number then it refuses with the usage', () => {
    for (const bad of [['--sessions'], ['--sessions', '0'], ['--sessions', 'many']]) {
      assert.throws(() => parseArgs(bad), /--sessions needs a positive number/);
    }
  });
});
