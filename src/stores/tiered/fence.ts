/**
 * Coalesces a shared store's read fences so that under load many reads share one round trip.
 *
 * A read may only share a fence sent after it began: one sent earlier can come back before a change
 * the read must see. So at most one fence is in flight and one queued; every read that arrives while
 * one is in flight waits for the queued one, which is sent the moment the first returns. With N
 * reads arriving per round trip, that is about one fence per N reads, at the price of up to two
 * round trips of waiting instead of one.
 * @module
 */

export class FenceCoalescer {
  readonly #send: () => Promise<boolean>;
  #inFlight: Promise<boolean> | null = null;
  #queued: Promise<boolean> | null = null;
  #sent = 0;

  /** `send` is the store's fence; a rejection or a throw counts as false (the caller then reads through). */
  constructor(send: () => Promise<boolean>) {
    this.#send = send;
  }

  /** Fences sent so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Resolves with the result of a fence sent at or after this call. Never rejects. */
  wait(): Promise<boolean> {
    if (this.#queued) return this.#queued;
    const ahead = this.#inFlight;
    if (!ahead) return this.#start();
    this.#queued = ahead.then(() => {
      this.#queued = null;
      return this.#start();
    });
    return this.#queued;
  }

  #start(): Promise<boolean> {
    this.#sent++;
    let p: Promise<boolean>;
    try {
      p = this.#send().then((ok) => ok === true, () => false);
    } catch {
      p = Promise.resolve(false);
    }
    this.#inFlight = p;
    // Registered before any queued follower's handler, so the slot is free when that one starts.
    void p.then(() => {
      if (this.#inFlight === p) this.#inFlight = null;
    });
    return p;
  }
}
