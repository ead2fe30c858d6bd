/**
 * Coalesces a shared store's read fences so that under load many reads share one round trip.
 *
 * A read may only share a fence sent after it began: one sent earlier can come back before a change
 * the read must see. So a fence is sent at the end of the event-loop turn that asked for it, and every
 * read of that turn shares it; at most one fence is in flight and one waits, and every read that
 * arrives while one is in flight waits for the next, which is sent once the first returns. With N
 * reads arriving per round trip, that is about one fence per N reads, at the price of up to two round
 * trips of waiting instead of one.
 * @module
 */

export class FenceCoalescer {
  readonly #send: () => Promise<boolean>;
  /** A fence asked for in this turn and not sent yet: any read may still join it. */
  #unsent: Promise<boolean> | null = null;
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
    if (this.#unsent) return this.#unsent;
    if (this.#queued) return this.#queued;
    const ahead = this.#inFlight;
    if (!ahead) return this.#start();
    this.#queued = ahead.then(() => {
      this.#queued = null;
      return this.#start();
    });
    return this.#queued;
  }

  /** A fence sent at the end of this turn (setImmediate), so that the reads of the turn share it. */
  #start(): Promise<boolean> {
    const p = new Promise<boolean>((resolve) => {
      setImmediate(() => {
        this.#unsent = null;
        this.#inFlight = p;
        this.#sent++;
        try {
          this.#send().then((ok) => resolve(ok === true), () => resolve(false));
        } catch {
          resolve(false);
        }
      });
    });
    this.#unsent = p;
    // Registered before any queued follower's handler, so the slot is free when that one starts.
    void p.then(() => {
      if (this.#inFlight === p) this.#inFlight = null;
    });
    return p;
  }
}
