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
export function withTimeout<T>(call: () => Promise<T> | T, ms: number, what: string): Promise<T> {
  let op: Promise<T>;
  try {
    op = Promise.resolve(call());
  } catch (err) {
    op = Promise.reject(err);
  }
  // One promise and one timer per call (no race, no async frame): this runs for every store call of
  // every request. The rejection handler is always attached, so a late failure of an operation that
  // already timed out never becomes an unhandled rejection; settling twice is a no-op.
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreUnavailableError(`the session store did not answer ${what} within ${ms} ms (option storeTimeoutMs)`)), ms);
    op.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(isTetherError(err) ? err : new StoreUnavailableError(`the session store failed on ${what}`, { cause: err }));
      },
    );
  });
}
