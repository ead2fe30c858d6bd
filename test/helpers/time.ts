/** Timing helpers for tests. */

/**
 * Waits, when the current window of `windowMs` (aligned to the epoch, as rate limits' windows are) ends
 * within `spanMs`, until just past its end: rate limits count per aligned window, weighted across the
 * boundary, so a test that counts up to a limit over `spanMs` must not straddle one.
 */
export async function clearOfWindowBoundary(spanMs: number, windowMs = 60_000): Promise<void> {
  const into = Date.now() % windowMs;
  if (into > windowMs - spanMs) await new Promise((r) => setTimeout(r, windowMs - into + 500));
}

/** `clearOfWindowBoundary` for a test that counts for up to 5 s against limits per clock minute. */
export async function clearOfMinuteBoundary(): Promise<void> {
  await clearOfWindowBoundary(5_000);
}
