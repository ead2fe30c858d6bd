/** Change-feed stamps (`<version>:<expiresAt>`): what `stampOf` writes, `expiresAtOfStamp` reads back. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { expiresAtOfStamp, stampOf } from '../../../src/core/store.js';

describe('change-feed stamps', () => {
  it('expiresAtOfStamp when given what stampOf wrote then returns its expiresAt; for text that is no stamp, NaN', () => {
    for (const r of [{ version: 1, expiresAt: 1_764_000_000_000 }, { version: 123_456, expiresAt: 0 }, { version: 2, expiresAt: 8_640_000_000_000_000 }]) {
      assert.equal(expiresAtOfStamp(stampOf(r)), r.expiresAt);
    }
    assert.ok(Number.isNaN(expiresAtOfStamp('no stamp')));
    assert.ok(Number.isNaN(expiresAtOfStamp('3:x')));
  });
});
