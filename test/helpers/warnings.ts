/** Process warnings a test provokes. */
import type { TestContext } from 'node:test';

export type ProcessWarning = Error & { code?: string };

/**
 * The process warnings emitted from now until the test `t` ends, when the listener is removed. Node
 * emits a warning on the next tick: await `nextWarnings()` before reading the list.
 */
export function warningsDuring(t: TestContext): ProcessWarning[] {
  const seen: ProcessWarning[] = [];
  const listener = (w: ProcessWarning): void => void seen.push(w);
  process.on('warning', listener);
  t.after(() => process.off('warning', listener));
  return seen;
}

/** Lets the warnings emitted so far reach their listeners. */
export function nextWarnings(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
