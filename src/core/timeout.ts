/**
 * Bounds every store call: a store that does not answer in time fails the request closed with
 * STORE_UNAVAILABLE instead of hanging it.
 * @module
 */
import { StoreUnavailableError, isTetherError } from './errors.js';

/**
 * Runs `call` with a deadline. It takes a function, not a promise, so that a store method that throws
 * synchronously or returns a plain value (a buggy third-party store) fails the same clean way as one
 * whose promise rejects.
 */
export async function withTimeout<T>(call: () => Promise<T> | T, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let op: Promise<T>;
  try {
    op = Promise.resolve(call());
  } catch (err) {
    op = Promise.reject(err);
  }
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`the session store did not answer ${what} within ${ms} ms (option storeTimeoutMs)`)), ms);
  });
  try {
    return await Promise.race([op, timeout]);
  } catch (err) {
    if (isTetherError(err)) throw err;
    throw new StoreUnavailableError(`the session store failed on ${what}`, { cause: err });
  } finally {
    clearTimeout(timer);
    // A late rejection of the abandoned operation must not become an unhandled rejection.
    op.catch(() => {});
  }
}
