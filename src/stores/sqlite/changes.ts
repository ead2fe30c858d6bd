/**
 * SqliteStore's change feed across processes: a log table written inside every writer's transaction,
 * polled by subscribers, with `PRAGMA data_version` making an idle poll cost one pragma.
 *
 * SQLite has no notifications between connections. `data_version` changes exactly when another
 * connection committed, so a poll that finds it unchanged reads nothing; this connection's own writes
 * are announced directly after commit and skipped when the poll later walks past their rows.
 * A row of a set or touch carries its stamp (SessionStore.subscribe); a removal's, and rows from before
 * schema version 2, carry NULL and are reported without one.
 * @module
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { ChangeFeedOptions } from '../../core/store.js';

/** How long change rows are kept: a subscriber whose poll falls further behind reports lost changes. */
export const CHANGE_RETENTION_MS = 60_000;
/** Rows read per query while catching up, and the cap on queries per poll (bounds one poll's work). */
const POLL_BATCH = 1_000;
const POLL_MAX_BATCHES = 100;
/** Oldest rows examined per trim, so one trim is cheap however large the log grew. */
const TRIM_BATCH = 10_000;

type Listener = (key: string, stamp?: string) => void;
type Change = { seq: number; key: string; stamp: string | null };


export class ChangeFeed {
  readonly #pollMs: number;
  readonly #listeners = new Map<Listener, ChangeFeedOptions>();
  /** Seqs this connection wrote and already announced, skipped when the poll reaches them. */
  readonly #ownSeqs = new Set<number>();
  readonly #s: {
    log: BetterSqlite3.Statement<[string, number, string | null]>;
    dataVersion: BetterSqlite3.Statement<[], number>;
    maxSeq: BetterSqlite3.Statement<[], number | null>;
    trimmedThrough: BetterSqlite3.Statement<[], number | null>;
    since: BetterSqlite3.Statement<[number, number], Change>;
    trimPoint: BetterSqlite3.Statement<[number], number | null>;
    trim: BetterSqlite3.Statement<[number]>;
    markTrimmed: BetterSqlite3.Statement<[number]>;
  };
  readonly #readSince: (from: number) => { trimmed: number; rows: Change[] };
  readonly #trimTx: BetterSqlite3.Transaction<(cutoff: number) => number>;
  #lastSeq = 0;
  #dataVersion = -1;
  #timer: NodeJS.Timeout | undefined;
  #warned = false;

  constructor(db: BetterSqlite3.Database, pollMs: number) {
    this.#pollMs = pollMs;
    this.#s = {
      log: db.prepare('INSERT INTO tether_changes (key, at, stamp) VALUES (?, ?, ?)'),
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
      maxSeq: db.prepare<[], number | null>('SELECT max(seq) FROM tether_changes').pluck(),
      trimmedThrough: db.prepare<[], number | null>("SELECT value FROM tether_meta WHERE name = 'changes_trimmed_through'").pluck(),
      since: db.prepare('SELECT seq, key, stamp FROM tether_changes WHERE seq > ? ORDER BY seq LIMIT ?'),
      trimPoint: db.prepare<[number], number | null>(
        `SELECT max(seq) FROM (SELECT seq, at FROM tether_changes ORDER BY seq LIMIT ${TRIM_BATCH}) WHERE at < ?`).pluck(),
      trim: db.prepare('DELETE FROM tether_changes WHERE seq <= ?'),
      markTrimmed: db.prepare("UPDATE tether_meta SET value = max(value, ?) WHERE name = 'changes_trimmed_through'"),
    };
    // One read transaction, so a trim by another process cannot slip between the two reads.
    this.#readSince = db.transaction((from: number) => ({
      trimmed: this.#s.trimmedThrough.get() ?? 0,
      rows: this.#s.since.all(from, POLL_BATCH),
    }));
    this.#trimTx = db.transaction((cutoff: number): number => {
      const through = this.#s.trimPoint.get(cutoff);
      if (through === null || through === undefined) return 0;
      const removed = this.#s.trim.run(through).changes;
      this.#s.markTrimmed.run(through);
      return removed;
    });
  }

  /**
   * Appends a change row; call inside the writer's transaction. `stamp` is the state a set or touch
   * left behind (absent for a removal). Returns its seq.
   */
  log(key: string, stamp?: string): number {
    // Wall time, not the store's injected clock: retention is about real polling delay.
    return Number(this.#s.log.run(key, Date.now(), stamp ?? null).lastInsertRowid);
  }

  /** After this connection committed `changes`: tell local listeners now rather than at the next poll. */
  committed(changes: ReadonlyArray<readonly [seq: number, key: string, stamp: string | undefined]>): void {
    if (this.#listeners.size === 0) return;
    for (const [seq, key, stamp] of changes) {
      this.#ownSeqs.add(seq);
      this.#emit(key, stamp);
    }
  }

  subscribe(listener: Listener, options: ChangeFeedOptions = {}): () => void {
    if (this.#listeners.size === 0) this.#start();
    // A wrapper per call, so subscribing one function twice gives two independent subscriptions.
    const own: Listener = (key, stamp) => listener(key, stamp);
    this.#listeners.set(own, options);
    return () => {
      if (this.#listeners.delete(own) && this.#listeners.size === 0) this.#stop();
    };
  }

  /**
   * Delivers the changes other connections committed before this call, at most POLL_MAX_BATCHES ×
   * POLL_BATCH rows of them. Returns true when that was all of them, false when the cap stopped it
   * with rows left unread (the next poll goes on from there). Throws driver errors.
   * Idle cost: one `PRAGMA data_version`.
   */
  poll(): boolean {
    if (this.#listeners.size === 0) return true;
    const dv = this.#s.dataVersion.get()!;
    if (dv === this.#dataVersion) {
      // No other connection committed since the last poll, so every newer row is our own.
      for (const seq of this.#ownSeqs) if (seq > this.#lastSeq) this.#lastSeq = seq;
      this.#ownSeqs.clear();
      return true;
    }
    for (let batch = 0; batch < POLL_MAX_BATCHES; batch++) {
      const { trimmed, rows } = this.#readSince(this.#lastSeq);
      if (trimmed > this.#lastSeq) {
        this.#lastSeq = trimmed;
        for (const seq of this.#ownSeqs) if (seq <= trimmed) this.#ownSeqs.delete(seq);
        this.#lost();
        continue;
      }
      for (const { seq, key, stamp } of rows) {
        this.#lastSeq = seq;
        if (!this.#ownSeqs.delete(seq)) this.#emit(key, stamp ?? undefined);
      }
      if (rows.length < POLL_BATCH) {
        // Only now is everything up to the version we read delivered; a capped poll retries next tick.
        this.#dataVersion = dv;
        return true;
      }
    }
    return false;
  }

  /** Deletes rows older than the retention window (at most TRIM_BATCH per call); returns how many. */
  trim(now = Date.now()): number {
    return this.#trimTx.immediate(now - CHANGE_RETENTION_MS);
  }

  stop(): void {
    this.#stop();
    this.#listeners.clear();
  }

  #start(): void {
    // data_version first: a commit landing between the two reads is then seen as new, never skipped.
    this.#dataVersion = this.#s.dataVersion.get()!;
    this.#lastSeq = Math.max(this.#s.maxSeq.get() ?? 0, this.#s.trimmedThrough.get() ?? 0);
    this.#ownSeqs.clear();
    this.#timer = setInterval(() => {
      try {
        this.poll();
      } catch (err) {
        // A busy or failing file: try again next tick. Readers (TieredStore) call poll() themselves
        // before serving a cached copy and see the error there.
        this.#warnOnce(`SqliteStore change poll failed (${(err as { code?: string }).code ?? 'error'}); retrying`);
      }
    }, this.#pollMs);
    this.#timer.unref();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#ownSeqs.clear();
  }

  #emit(key: string, stamp: string | undefined): void {
    for (const listener of this.#listeners.keys()) {
      try {
        listener(key, stamp);
      } catch {
        this.#warnOnce('a SqliteStore change listener threw; the error was dropped');
      }
    }
  }

  #lost(): void {
    for (const { onResync } of [...this.#listeners.values()]) {
      try {
        onResync?.();
      } catch {
        this.#warnOnce('a SqliteStore onResync listener threw; the error was dropped');
      }
    }
  }

  #warnOnce(message: string): void {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(message, { code: 'TETHER_SQLITE_CHANGE_FEED' });
  }
}
