/** Timing helpers for tests. */

/**
 * Waits, when the clock minute ends within 5 s, until just past it: rate limits count per clock minute
 * (weighted across the boundary), so a test that counts up to a limit starts clear of one.
 */
export async function clearOfMinuteBoundary(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 55_000) await new Promise((r) => setTimeout(r, 60_500 - intoMinute));
}
