/** Memory under load for fault tests: the heap after a full collection, and an open-loop stream of writes. */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SessionRecord, SessionStore } from '../../src/core/store.js';

let gc: (() => void) | undefined;

/** The heap in use (bytes) after a full garbage collection (`gc` made reachable for this process). */
export function heapAfterGc(): number {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  return process.memoryUsage().heapUsed;
}

/**
 * Writes `record` over version 1 again and again without waiting for answers, as requests arrive
 * whether or not the store answers: `perTick` writes every `tickMs` for `forMs` (at most `max`).
 * Resolves once the last were sent; `settled` resolves when every write has settled.
 */
async function writeOpenLoop(store: SessionStore, record: SessionRecord, o: { perTick: number; tickMs: number; forMs: number; max: number }): Promise<{ sent: number; failed: () => number; settled: Promise<unknown> }> {
  let failed = 0;
  let sent = 0;
  const all: Array<Promise<unknown>> = [];
  const started = Date.now();
  while (Date.now() - started < o.forMs && sent < o.max) {
    for (let i = 0; i < o.perTick; i++, sent++) all.push(store.set({ ...record, version: 2 }, 1).catch(() => void failed++));
    await new Promise((r) => setTimeout(r, o.tickMs));
  }
  return { sent, failed: () => failed, settled: Promise.all(all) };
}

/**
 * Against a store that does not answer (hung, locked): 2,000 writes a second for 5 s, answered or not;
 * asserts every one failed and the heap after a collection grew by under 16 MB (what piles up
 * nowhere), and reports the figures as the test's diagnostic.
 */
export async function assertMemoryFlatUnderWrites(t: TestContext, store: SessionStore, record: SessionRecord, what: string): Promise<void> {
  const heapBefore = heapAfterGc();
  const { sent, failed, settled } = await writeOpenLoop(store, record, { perTick: 40, tickMs: 20, forMs: 5_000, max: 12_000 });
  await settled;
  const grown = heapAfterGc() - heapBefore;
  t.diagnostic(`${sent} writes ${what}, ${failed()} failed; the heap grew ${(grown / 1e6).toFixed(1)} MB`);
  assert.equal(failed(), sent, 'every write failed (none waits on)');
  assert.ok(grown < 16e6, `the heap grew ${(grown / 1e6).toFixed(1)} MB: something holds what was sent`);
}
