/**
 * The commit path: what a request's session becomes at the store before its response goes out. An
 * unchanged session with no touch due is settled at once, without a store call; otherwise the new
 * record is written by compare-and-set (a conflict re-applies the request's `update()` changes on the
 * fresh record), a new or regenerated session is created under its new ID, an ended one destroyed,
 * and an idle one touched.
 * @module
 */
import { handleOf, hashId } from './ids.js';
import { jsonExact, sameData } from './decoded.js';
import { draftHoldsPlain, draftWrites } from './draft.js';
import { dequal } from 'dequal';
import type { DecodedCache } from './decoded.js';
import { CodecFailureWarning, bytesOver, isJsonCodec, jsonCodec, jsonEnvelope } from './codec.js';
import type { Envelope, SessionCodec } from './codec.js';
import { dataOf, handleIn, idOfKey } from './session.js';
import type { SessionState } from './session.js';
import { SessionConflictError, SessionTooLargeError } from './errors.js';
import type { Lifetime, ResolvedOptions } from './options.js';
import { idCollision } from './store.js';
import { isMoved, movedData, movedId, pointedTo } from './renewal.js';
import type { SessionRecord, SessionStore, SetResult } from './store.js';
import type { LifecycleEvent } from '../observability/channels.js';

/**
 * The data of a record ended by a regeneration: read as "no session". The compare-and-set that ends
 * the record also gives it deadlines already passed, so the store drops it in that same call (a TTL
 * store deletes it; the others stop returning it and sweep it later), and no separate delete is sent.
 * The marker covers a store whose clock trails the engine's by a few milliseconds. Valid JSON, so
 * stores that check their data accept it, but never a codec envelope.
 */
export const ENDED = '"tether:ended"';

/** `base` ended at `now`, as a compare-and-set over it writes it: ENDED, with deadlines already passed. */
export function endedRecord(base: SessionRecord, now: number): SessionRecord {
  return { ...base, data: ENDED, version: base.version + 1, lastSeenAt: now, expiresAt: now - 1, absoluteExpiresAt: Math.min(base.absoluteExpiresAt, now - 1) };
}

/**
 * How a record stands against its deadlines (see `expiryOf`). `LiveIfRemembered`: past the engine's
 * own timeouts, within those of a remembered session: live if it is one.
 */
export const Expiry = { Live: 0, Expired: 1, LiveIfRemembered: 2 } as const;
export type Expiry = typeof Expiry[keyof typeof Expiry];

/** How a record stands against its deadlines: the store's, and the engine's timeouts (a remembered session's longer ones). */
export function expiryOf(r: SessionRecord, now: number, o: Readonly<ResolvedOptions>): Expiry {
  if (now >= r.expiresAt || now >= r.absoluteExpiresAt) return Expiry.Expired;
  if (now < r.lastSeenAt + o.idleTimeoutMs && now < r.createdAt + o.absoluteTimeoutMs) return Expiry.Live;
  return now >= r.lastSeenAt + o.remember.idleTimeoutMs || now >= r.createdAt + o.remember.absoluteTimeoutMs ? Expiry.Expired : Expiry.LiveIfRemembered;
}

/**
 * Whether a record is past its idle or absolute deadline, by the engine's settings or the store's.
 * `remembered` tells whether the record is a remembered session's (by default by decoding it), and is
 * asked only when that decides.
 */
export function sessionExpired(r: SessionRecord, now: number, o: Readonly<ResolvedOptions>,
  remembered: (r: SessionRecord) => boolean = (rec) => rememberedIn(rec, o)): boolean {
  const e = expiryOf(r, now, o);
  return e === Expiry.Expired || (e === Expiry.LiveIfRemembered && !remembered(r));
}

/** Whether a stored record is a remembered session's; false for one the codec cannot read. */
function rememberedIn(r: SessionRecord, o: Readonly<ResolvedOptions>): boolean {
  if (r.data === ENDED) return false;
  try {
    return o.codec.decode(r.data).r === 1;
  } catch {
    return false;
  }
}

/** The timeouts that apply to a session: a remembered one's, or the engine's. */
export function lifetimeOf(s: SessionState, o: Readonly<ResolvedOptions>): Readonly<Lifetime> {
  return s.remembered ? o.remember : o;
}

/** Filled by #encode: the envelope a write's text decodes to, when it could be kept without decoding. */
interface Written {
  env: Envelope | null;
}
const NOTHING_WRITTEN: Written = Object.freeze({ env: null });

/**
 * The handles an event names when they are not its keys' (LifecycleMessage): `handle`, a renewed
 * session's (`Envelope.h`); `previousHandle`, the session a regeneration replaced, or null to send none
 * (a renewal, which keeps the session's handle).
 */
export interface EventNames {
  handle?: string | undefined;
  previousHandle?: string | null;
}

/**
 * The handle of the session a stored record holds: the one a renewal kept in it (`Envelope.h`), else its
 * key's. A record the codec cannot read is named by its key.
 */
export function recordHandle(r: SessionRecord, codec: SessionCodec): string {
  try {
    return codec.decode(r.data).h ?? handleOf(r.key);
  } catch {
    return handleOf(r.key);
  }
}

/** Counters the commit path adds to (the engine's stats). */
export interface CommitStats {
  writes: number;
  conflicts: number;
  replays: number;
  touches: number;
}

/** What the commit path uses of its engine. */
export interface CommitParts {
  readonly options: Readonly<ResolvedOptions>;
  readonly store: SessionStore;
  /** Decoded sessions by store key: what a write leaves is kept there, ready for the next request. */
  readonly decoded: DecodedCache;
  readonly stats: CommitStats;
  /** A store call under the engine's deadline. */
  call<R>(op: () => Promise<R>, what: string): Promise<R>;
  /** Under `newSessions` limits: counts a new session about to be stored, or throws RATE_LIMITED. */
  admit?: (s: SessionState) => Promise<(stored: boolean) => void>;
  emit(event: LifecycleEvent, key: string, userId: string | null, reason?: string, previousKey?: string, names?: EventNames): void;
  /**
   * Deletes the record under `key` and reports it (`event`, `reason`); calls of this process for a key
   * whose deletion is under way share it instead: true for the call that deleted it. `handle`: the
   * session's, when it is not the key's.
   */
  endOnce(key: string, userId: string | null, event: 'expired' | 'destroyed', reason?: string, handle?: string): Promise<boolean>;
  /**
   * The Set-Cookie value that carries the ID of a session stored under `key`: persistent for
   * `lastingMs` when given, else with the cookie options' lifetime. With `keepVerified` (the default)
   * the signed value is remembered as verified, so its first return skips the HMAC.
   */
  issueCookie(id: string, key: string, lastingMs: number | undefined, keepVerified?: boolean): string;
  /** The Set-Cookie value that expires the session cookie. */
  readonly clearCookie: string;
}

export class Committer {
  readonly #e: CommitParts;
  /** A session's data the codec could not encode: a bug of the app's (a BigInt, a cycle), whose request fails with a bare 500 and stores nothing. */
  readonly #unencodable = new CodecFailureWarning('TETHER_SESSION_UNENCODABLE', (kind) => `a session's data could not be encoded (${kind}), so its request failed and stored nothing: with the JSON codec, session data must be JSON values (no BigInt, no cycles, no toJSON that throws)`);

  constructor(parts: CommitParts) {
    this.#e = parts;
  }

  /**
   * Commits at once what needs no store call (unchanged data, no touch due); otherwise a promise for
   * the write, touch or destroy.
   */
  persist(s: SessionState): Promise<void> | undefined {
    const o = this.#e.options;
    const now = o.clock.now();
    const record = s.record;
    if (record === null && (s.destroyed || !this.#hasContent(s))) {
      if (s.clearCookie) s.setCookies.push(this.#e.clearCookie);
      if (s.destroyed) s.clearSiteData = o.clearSiteData;
      return undefined;
    }
    if (s.destroyed || record === null || s.regenerate) return this.#write(s, now);
    // An ID past the renewal interval is replaced by whichever request of the session can deliver the cookie first.
    if (o.renewal !== null && s.renew && s.touch !== false && now - (s.issuedAt ?? record.createdAt) >= o.renewal.intervalMs) return this.#renew(s, now);
    const loaded = s.loaded!;
    // Data equal by value to what was loaded needs no encoding; otherwise the encoded text decides.
    // After update() a change is all but certain: the text decides at once, sparing the comparison.
    const same = s.userId === s.loadedUserId && s.csrf === loaded.c && s.remembered === (loaded.r === 1) && s.authAt === loaded.a
      && s.net === loaded.n && s.ua === loaded.u && s.sessionHandle === loaded.h && (s.data === null || (s.ops.length === 0 && sameData(s.data, loaded.d)));
    if (!same || s.touch === true || (s.touch === undefined && now - record.lastSeenAt >= o.touchIntervalMs)) return this.#write(s, now, same);
    if (s.resign) this.#sendCookie(s, record, now);
    return undefined;
  }

  /**
   * The text to store for the request's session. With `written`, for the JSON codec, the data is
   * copied (when it is exactly what JSON gives back) and its text built in the same walk, which writes
   * what the request left unchanged from the text it had before (decoded.ts `jsonExact`): `written.env`
   * is then the decoding of the text, ready for the decoded cache.
   */
  #encode(s: SessionState, written?: Written): string {
    const d = dataOf(s);
    const codec = this.#e.options.codec;
    const exact = written && isJsonCodec(codec) ? jsonExact(d) : undefined;
    const env: Envelope = { d: exact === undefined ? d : exact.value };
    if (s.csrf !== undefined) env.c = s.csrf;
    if (s.ua !== undefined) env.u = s.ua;
    if (s.remembered) env.r = 1;
    if (s.authAt !== undefined && s.userId !== null) env.a = s.authAt;
    if (s.net !== undefined) env.n = s.net;
    if (s.issuedAt !== undefined) env.i = s.issuedAt;
    if (s.sessionHandle !== undefined) env.h = s.sessionHandle;
    if (written) written.env = exact === undefined ? null : env;
    // A codec that only wraps the JSON (encryptedCodec) is given the envelope of the exact copy.
    let text: string;
    try {
      text = exact === undefined || codec !== jsonCodec ? codec.encode(env) : jsonEnvelope(exact.text, env);
    } catch (err) {
      this.#unencodable.warn(err);
      throw err;
    }
    const max = this.#e.options.maxSessionBytes;
    const bytes = bytesOver(text, max);
    if (bytes !== null) throw new SessionTooLargeError(bytes, max);
    return text;
  }

  /**
   * A new session's record, or a regenerated one's under its new ID. A regeneration keeps the session's
   * age, so its absolute timeout still counts from its creation (a new ID is not a new session, as in
   * Servlet's changeSessionId); a login starts the lifetime again, as a new authentication.
   */
  #newRecord(s: SessionState, id: string, text: string, now: number): SessionRecord {
    const o = this.#e.options;
    const life = lifetimeOf(s, o);
    const createdAt = s.record !== null && !s.newLifetime ? s.record.createdAt : now;
    return {
      key: hashId(id), data: text, version: 1, userId: s.userId, createdAt, lastSeenAt: now,
      expiresAt: now + life.idleTimeoutMs + o.expiryGraceMs, absoluteExpiresAt: createdAt + life.absoluteTimeoutMs + o.expiryGraceMs,
    };
  }

  /**
   * Sends the session's cookie again (`record`: its stored record, as of `now`). A remembered session's
   * is persistent for as long as the session can last: its idle timeout, cut to what is left of its
   * absolute lifetime.
   */
  #sendCookie(s: SessionState, record: SessionRecord, now: number, keepVerified = true): void {
    const r = this.#e.options.remember;
    const lasting = s.remembered ? Math.min(r.idleTimeoutMs, record.createdAt + r.absoluteTimeoutMs - now) : undefined;
    s.setCookies.push(this.#e.issueCookie(s.id!, record.key, lasting, keepVerified));
  }

  /** Whether a session not yet stored has anything worth storing. */
  #hasContent(s: SessionState): boolean {
    if (s.userId !== null || s.csrf !== undefined) return true;
    const d = s.data;
    if (d === null) return false;
    const keys = Object.keys(d);
    // A key whose value JSON drops (`session.set('returnTo', req.query.returnTo)` with no such query)
    // stores nothing: the visitor would be given a session, and a cookie, holding `{}`.
    return isJsonCodec(this.#e.options.codec) ? keys.some((k) => keptByJson(d[k])) : keys.length > 0;
  }

  /** The store calls of a commit: destroy, create or regenerate, compare-and-set, touch. */
  async #write(s: SessionState, now: number, same = false): Promise<void> {
    const o = this.#e.options;
    if (s.destroyed) {
      const rec = s.record!;
      const handle = handleIn(s)!;
      this.#e.decoded.forget(rec.key);
      let ended = rec.key;
      if (o.renewal === null) await this.#e.call(() => this.#e.store.destroy(rec.key), 'destroy');
      else {
        ended = await this.#endRenewable(s, rec.key, now);
        if (rec.userId !== null) await this.#endCopies(rec, ended);
      }
      this.#e.emit('destroyed', ended, rec.userId, 'logout', undefined, { handle });
      // Ended: a later commit of it (endNow after this one) only expires the cookie again.
      s.record = null;
      s.clearCookie = true;
      s.setCookies.push(this.#e.clearCookie);
      s.clearSiteData = o.clearSiteData;
      return;
    }
    if (s.record === null || s.regenerate) {
      // Regeneration first ends the old record by compare-and-set, so a session that was destroyed (or
      // changed) by another request meanwhile is neither carried to a new ID nor silently overwritten.
      // Its owner stays on it: the store drops the index entry in the same step where it can (Redis),
      // and index entries of records past their deadline are ignored and pruned by every store.
      // A regenerated session's decoding is kept, as after any write: its owner just logged in and is
      // coming back. A new one's is not: it may never come back, and keeping it would fill the decoded
      // cache with every new visitor's session.
      const regenerating = s.record !== null;
      const written: Written = regenerating ? { env: null } : NOTHING_WRITTEN;
      // A new ID begins a new session, named by its own handle, but for a reauthentication's, which
      // goes on with the session as a renewal does.
      const previousHandle = handleIn(s);
      const kept = regenerating && s.keepHandle && previousHandle !== null;
      s.sessionHandle = kept ? previousHandle : undefined;
      // Under renewal a new ID is dated, so that the commit of a request that finds it due replaces it.
      if (o.renewal !== null) s.issuedAt = now;
      let text = this.#encode(s, regenerating ? written : undefined);
      const id = s.id ?? s.newId();
      const store = this.#e.store;
      // With a store that regenerates in one step, the new record rides with each attempt to end the old.
      let record: SessionRecord | null = null;
      if (regenerating) {
        const inOneStep = store.regenerate === undefined ? undefined : (ended: SessionRecord, expected: number, data: string) => {
          record = this.#newRecord(s, id, data, now);
          return store.regenerate!(ended, expected, record);
        };
        text = await this.#writeLoop(s, now, text, written, (base) => endedRecord(base, now), inOneStep);
      }
      if (record === null) {
        // A new session's place under newSessions.maxActive is kept only if its write stores it.
        const admitted = !regenerating && this.#e.admit !== undefined ? await this.#e.admit(s) : undefined;
        const fresh = this.#newRecord(s, id, text, now);
        let res: SetResult;
        try {
          res = await this.#e.call(() => store.set(fresh, 0), 'set');
        } catch (err) {
          admitted?.(false);
          throw err;
        }
        admitted?.(res.ok);
        if (!res.ok) throw idCollision();
        record = fresh;
      }
      this.#e.stats.writes++;
      this.#keepWritten(record.key, text, written);
      const previous = s.record;
      s.id = id;
      s.key = record.key;
      s.record = record;
      // A brand-new session's cookie is not remembered as verified: most never come back (crawlers,
      // one-page visits), and a flood of them would push out the cookies of returning users.
      this.#sendCookie(s, record, now, previous !== null);
      if (previous) {
        this.#e.decoded.forget(previous.key);
        this.#e.emit('regenerated', record.key, record.userId, undefined, previous.key, kept ? { handle: previousHandle, previousHandle: null } : { previousHandle });
      } else {
        this.#e.emit('created', record.key, record.userId);
      }
      if (record.userId !== null && record.userId !== s.loadedUserId) await this.#enforceLimit(record.userId, record.key, record.createdAt);
      return;
    }
    const record = s.record;
    const written: Written = same ? NOTHING_WRITTEN : { env: null };
    const text = same ? null : this.#encode(s, written);
    if (text !== null && (text !== s.loadedText || s.userId !== s.loadedUserId)) {
      // The deadlines follow the session's lifetime as the write leaves it: remembering it (or no longer) moves both.
      const final = await this.#writeLoop(s, now, text, written, (base, data) => {
        const life = lifetimeOf(s, o);
        return {
          key: base.key, data, version: base.version + 1, userId: s.userId, createdAt: base.createdAt, lastSeenAt: now,
          expiresAt: now + life.idleTimeoutMs + o.expiryGraceMs, absoluteExpiresAt: base.createdAt + life.absoluteTimeoutMs + o.expiryGraceMs,
        };
      });
      // The key written may be another than the one loaded: a renewal by another request was followed.
      const key = s.record.key;
      this.#keepWritten(key, final, written);
      // A remembered session's cookie lasts as long as it; one no longer remembered gets the plain cookie back.
      if (s.resign || o.cookie.maxAgeMs !== undefined || s.remembered || s.loaded!.r === 1) this.#sendCookie(s, s.record, now);
      if (s.userId !== null && s.userId !== s.loadedUserId) await this.#enforceLimit(s.userId, key, now);
      return;
    }
    if (s.touch === true || (s.touch === undefined && now - record.lastSeenAt >= o.touchIntervalMs)) {
      const idle = lifetimeOf(s, o).idleTimeoutMs;
      const expiresAt = now + idle + o.expiryGraceMs;
      const moved = await this.#e.call(() => this.#e.store.touch(record.key, expiresAt, now, record.version), 'touch');
      // What the store now holds (a touch keeps the version), for the session's deadlines (`expiresAt`).
      // A touch that found the session changed or ended by another request meanwhile refreshed nothing.
      if (moved) {
        this.#e.stats.touches++;
        s.record = { ...record, lastSeenAt: now, expiresAt };
      }
      // A persistent cookie is sent again with each touch, so that it lasts as long as the session.
      if (o.cookie.maxAgeMs !== undefined || s.remembered) s.resign = true;
    }
    if (s.resign) this.#sendCookie(s, record, now);
  }

  /**
   * Ends the session stored under `key` when another request of it may be renewing its ID (`renewal`):
   * a plain delete of the old record, once that request has made it a pointer, would leave the session
   * live under the new ID, whose cookie that request answers. So the record is ended by compare-and-set,
   * as a regeneration ends one (which makes a renewal still under way fail and remove its copy), and a
   * pointer met instead is followed, with the session's ID, to the record it names. Returns the key of
   * the record it ended last, under which the session is reported ended (its sockets too).
   */
  async #endRenewable(s: SessionState, key: string, now: number): Promise<string> {
    const store = this.#e.store;
    let id = idOfKey(s, key);
    for (let attempt = 0; attempt <= this.#e.options.maxReplays; attempt++) {
      const cur = await this.#e.call(() => store.get(key), 'get');
      if (cur === null) return key;
      if (isMoved(cur.data)) {
        const to = id === null ? null : movedId(cur.data, id);
        await this.#e.call(() => store.destroy(key), 'destroy');
        if (to === null) return key;
        id = to;
        key = hashId(to);
        this.#e.decoded.forget(key);
        continue;
      }
      if ((await this.#e.call(() => store.set(endedRecord(cur, now), cur.version), 'set')).ok) return key;
    }
    // Still changing under every attempt: deleted outright, as without renewal.
    await this.#e.call(() => store.destroy(key), 'destroy');
    return key;
  }

  /**
   * After a logout under renewal: ends the other records of the session that `rec` (as loaded) was, by
   * its user's listing (sessionsOf). A renewal whose pointer write failed, and whose removal of its copy
   * failed too, left the session under a new ID nobody holds the cookie of; it would stay listed as a
   * device of the user until its idle timeout. Best effort: the session the cookie names has ended, and
   * the answer says so even when the store fails now.
   */
  async #endCopies(rec: SessionRecord, ended: string): Promise<void> {
    const o = this.#e.options;
    const userId = rec.userId!;
    try {
      const listed = await this.#e.call(() => this.#e.store.listByUser(userId), 'listByUser');
      const others = listed.filter((r) => r.key !== rec.key && r.key !== ended);
      if (others.length === 0) return;
      const group = sessionsOf([rec, ...others], o).find((g) => g.includes(rec))!;
      for (const r of group) {
        if (r === rec) continue;
        this.#e.decoded.forget(r.key);
        await this.#e.call(() => this.#e.store.destroy(r.key), 'destroy');
      }
    } catch {
      // Left to its idle timeout, as before the logout.
    }
  }

  /**
   * Replaces an ID past the renewal interval (`renewal`): the session, with what this request changed,
   * is stored under a new ID first, then the old record becomes a pointer to it (renewal.ts), live for
   * the grace, by compare-and-set, so that a pointer never names a key not yet written. Data, owner,
   * CSRF token and age are kept; the answer carries the new cookie. When another request of the session
   * wrote (or renewed) first, the compare-and-set fails: the copy is removed, and this request commits
   * as one with no renewal due would, following the other's renewal if that is what it meets.
   */
  async #renew(s: SessionState, now: number): Promise<void> {
    const o = this.#e.options;
    const store = this.#e.store;
    const record = s.record!;
    const oldId = s.id!;
    const issuedAt = s.issuedAt;
    const sessionHandle = s.sessionHandle;
    // The session keeps its handle under the new ID: a session list shown before still names it.
    const kept = handleIn(s)!;
    s.issuedAt = now;
    s.sessionHandle = kept;
    const written: Written = { env: null };
    let text: string;
    try {
      text = this.#encode(s, written);
    } finally {
      s.issuedAt = issuedAt;
      s.sessionHandle = sessionHandle;
    }
    const id = s.newId();
    const fresh = this.#newRecord(s, id, text, now);
    let created: SetResult;
    try {
      created = await this.#e.call(() => store.set(fresh, 0), 'set');
    } catch (err) {
      // Written perhaps (an answer that came too late), and no pointer will name it. Removed behind the
      // failure's answer, which waits for no further call to a store that is failing.
      this.#e.call(() => store.destroy(fresh.key), 'destroy').catch(ignore);
      throw err;
    }
    if (!created.ok) throw idCollision();
    const until = now + o.renewal!.graceMs;
    const pointer: SessionRecord = {
      ...record, data: movedData(oldId, id), version: record.version + 1, userId: null,
      lastSeenAt: until, expiresAt: until, absoluteExpiresAt: Math.min(record.absoluteExpiresAt, until),
    };
    let res: SetResult;
    try {
      res = await this.#e.call(() => store.set(pointer, record.version), 'set');
    } catch (err) {
      void this.#dropCopy(record, fresh.key, oldId, id);
      throw err;
    }
    if (!res.ok) {
      await this.#e.call(() => store.destroy(fresh.key), 'destroy');
      s.renew = false;
      await this.persist(s);
      // A request that stored nothing never met the other's pointer: its answer names the new ID too, so
      // that the browser has it even when the renewing request's answer was lost (a cancelled navigation).
      if (!s.destroyed && s.key === record.key) {
        const cur = await this.#e.call(() => store.get(record.key), 'get');
        const target = cur !== null && isMoved(cur.data) ? await this.#follow(s, cur, now) : null;
        if (target !== null) {
          s.record = target;
          s.setCookies.length = 0;
          this.#sendCookie(s, target, now);
        }
      }
      return;
    }
    this.#e.stats.writes += 2;
    this.#keepWritten(fresh.key, text, written);
    this.#e.decoded.forget(record.key);
    s.id = id;
    s.key = fresh.key;
    s.record = fresh;
    s.issuedAt = now;
    s.sessionHandle = kept;
    this.#sendCookie(s, fresh, now);
    this.#e.emit('regenerated', fresh.key, fresh.userId, 'renewal', record.key, { handle: s.sessionHandle, previousHandle: null });
    if (s.userId !== null && s.userId !== s.loadedUserId) await this.#enforceLimit(s.userId, fresh.key, now);
  }

  /**
   * After the pointer write of a renewal failed (an error, or no answer in time): the copy under the new
   * ID is removed, unless the pointer was written after all, which makes the copy the session. Nobody
   * holds the copy's cookie, and left alone it would outlive a logout as a second device in its user's
   * session list until its idle timeout. The old record is first given a new version (its content as it
   * is), so that a pointer write still on its way to the store fails its compare-and-set instead of
   * naming the removed copy. Best effort, behind the failure's answer (which waits for no further call
   * to a store that is failing): a store that still fails leaves the copy to its idle timeout.
   */
  async #dropCopy(record: SessionRecord, copyKey: string, oldId: string, newId: string): Promise<void> {
    const store = this.#e.store;
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const cur = await this.#e.call(() => store.get(record.key), 'get');
        if (cur !== null && isMoved(cur.data) && movedId(cur.data, oldId) === newId) return;
        // Another version (or none): a pointer of this renewal, which expects the one loaded, can no longer be written.
        if (cur === null || cur.version !== record.version) break;
        if ((await this.#e.call(() => store.set({ ...cur, version: cur.version + 1 }, cur.version), 'set')).ok) break;
        if (attempt === 1) return;
      }
      await this.#e.call(() => store.destroy(copyKey), 'destroy');
    } catch {
      // The store still fails: the copy stays until its idle timeout, listed with its session.
    }
  }

  /**
   * The session a renewal's pointer leads to, for the request whose cookie named the old ID; null when
   * the pointer does not open with it or the session it names is gone. The request's commit then
   * carries the new ID's cookie (a regeneration of its own gives it a newer one).
   */
  async #follow(s: SessionState, pointer: SessionRecord, now: number): Promise<SessionRecord | null> {
    const to = pointedTo(pointer, s.presentedId, now);
    if (to === null) return null;
    const target = await this.#e.call(() => this.#e.store.get(to.key), 'get');
    if (target === null || isMoved(target.data)) return null;
    if (!s.regenerate) {
      // The renewal kept the session's handle in the record it wrote; this request's writes keep it too.
      s.sessionHandle ??= handleOf(pointer.key);
      s.id = to.id;
      s.key = target.key;
      s.resign = true;
    }
    return target;
  }

  /**
   * Whether the session a renewal's pointer led to is what this request loaded, but for the ID's issue
   * time: the renewal was all the other request stored, so this one's changes apply to it as they are
   * (even those `update()` did not make), keeping the new issue time unless this request regenerates.
   */
  #onlyRenewed(s: SessionState, target: SessionRecord): boolean {
    const loaded = s.loaded;
    if (target.version !== 1 || target.userId !== s.loadedUserId || loaded === null) return false;
    let env: Envelope;
    try {
      env = this.#e.options.codec.decode(target.data);
    } catch {
      return false;
    }
    const same = env.c === loaded.c && env.u === loaded.u && env.r === loaded.r && env.a === loaded.a && env.n === loaded.n && dequal(env.d, loaded.d);
    if (same && !s.regenerate) s.issuedAt = env.i;
    return same;
  }

  /** Keeps the decoding of the text just written (see #encode), so the session's next request skips the codec. */
  #keepWritten(key: string, text: string, written: Written): void {
    if (written.env) this.#e.decoded.prime(key, text, written.env);
    else this.#e.decoded.forget(key);
  }

  /**
   * Compare-and-set of `next(base, encodedData)` over the loaded record. On a conflict the handler's
   * `update()`/`setUser()` changes are re-applied to the fresh record and the write retried; a change
   * that cannot be replayed, or a session that ended meanwhile, fails with SESSION_CONFLICT.
   * Returns the data text it wrote (after any replay).
   */
  async #writeLoop(s: SessionState, now: number, firstText: string, written: Written, next: (base: SessionRecord, data: string) => SessionRecord,
    write?: (rec: SessionRecord, expectedVersion: number, data: string) => Promise<SetResult>): Promise<string> {
    let base = s.record!;
    let text = firstText;
    let replayable: boolean | undefined;
    for (let attempt = 0; ; attempt++) {
      const rec = next(base, text);
      const data = text;
      const expected = base.version;
      const res = await this.#e.call(() => write ? write(rec, expected, data) : this.#e.store.set(rec, expected), write ? 'regenerate' : 'set');
      if (res.ok) {
        this.#e.stats.writes++;
        s.record = rec;
        return text;
      }
      replayable ??= await this.#replayable(s, firstText);
      const budget = attempt < this.#e.options.maxReplays;
      // Under renewal the record is read even for changes that cannot be replayed: the conflict may be
      // another request's renewal, which changed nothing they depend on.
      let fresh = budget && (replayable || this.#e.options.renewal !== null) ? await this.#e.call(() => this.#e.store.get(base.key), 'get') : null;
      if (fresh !== null && isMoved(fresh.data)) {
        // Another request of the session renewed its ID: the change goes to the session under the new one.
        fresh = await this.#follow(s, fresh, now);
        // Not a conflict: the other request stored only a new ID, which this write follows.
        if (fresh !== null && this.#onlyRenewed(s, fresh)) {
          base = fresh;
          text = this.#encode(s, written);
          continue;
        }
      }
      if (!replayable) fresh = null;
      this.#e.stats.conflicts++;
      if (!fresh || !this.#live(fresh, now)) {
        this.#e.emit('conflict', base.key, s.userId, 'rejected', undefined, { handle: handleIn(s) ?? undefined });
        // Replayable and still within budget means the fresh record was read, and it was gone.
        const ended = replayable && budget;
        throw new SessionConflictError(ended ? 'the session ended while this request ran' : undefined);
      }
      this.#e.emit('conflict', base.key, s.userId, 'replayed', undefined, { handle: handleIn(s) ?? undefined });
      this.#e.stats.replays++;
      await this.#rebase(s, fresh.data, fresh.userId, s);
      text = this.#encode(s, written);
      base = fresh;
    }
  }

  /** Re-applies the request's replayable changes to `data`, writing the outcome into `into`. */
  async #rebase(s: SessionState, data: string, userId: string | null, into: SessionState): Promise<void> {
    const env = this.#e.options.codec.decode(data);
    // A token rotated by regenerate() in this request is part of the intent, not of the data to rebase.
    const replay: SessionState = { ...s, data: env.d, csrf: s.regenerate ? s.csrf : env.c, ua: env.u, userId, remembered: env.r === 1, authAt: userId === null ? undefined : env.a, net: s.net ?? env.n,
      issuedAt: s.regenerate ? s.issuedAt : env.i };
    for (const op of s.ops) await op(env.d, replay);
    into.data = env.d;
    into.csrf = replay.csrf;
    into.userId = replay.userId;
    into.remembered = replay.remembered;
    into.authAt = replay.authAt;
    into.net = replay.net;
    into.issuedAt = replay.issuedAt;
  }

  /**
   * True when every change the handler made went through `update`/`setUser`, so it can be re-applied.
   * Data in a draft (the JSON codec) counts its writes: any beyond those of completed `update()`
   * functions were made outside them. The functions are run again on the loaded data, and giving the
   * request's text settles it. When they give another text, they write something that differs at each
   * run (a random ID, the time): if every value they wrote was a draft or a plain value, the count saw
   * every change, and the request is replayed. An object or array they wrote as it was could have been
   * changed afterwards through a reference, which no count sees: then a second run marks which parts
   * differ from run to run, and everything else must be as the first run left it.
   */
  async #replayable(s: SessionState, currentText: string): Promise<boolean> {
    const writes = s.data === null ? 0 : draftWrites(s.data);
    if (writes !== undefined && writes !== s.updateWrites) return false;
    const first = await this.#probe(s);
    if (first === currentText) return true;
    if (writes === undefined || first === null || s.data === null) return false;
    if (!draftHoldsPlain(s.data)) return true;
    const second = await this.#probe(s);
    return second !== null && sameExceptVarying(JSON.parse(currentText), JSON.parse(first), JSON.parse(second));
  }

  /** The text the request's replayable changes give when re-applied to the data it loaded (null if the owner differs). */
  async #probe(s: SessionState): Promise<string | null> {
    const probe: SessionState = { ...s };
    await this.#rebase(s, s.loadedText!, s.loadedUserId, probe);
    return probe.userId === s.userId ? this.#encode(probe) : null;
  }

  /** A record that still names a session: not past a deadline, not ended by a regeneration. */
  #live(r: SessionRecord, now: number): boolean {
    return r.data !== ENDED && !sessionExpired(r, now, this.#e.options);
  }

  /**
   * Ends the user's oldest sessions beyond `maxSessionsPerUser`, after a login at `loginAt` (the new
   * record's creation for a regenerated session, the commit's time for `setUser()`). Sessions are
   * ordered by creation (the last login, for a regenerated one), ties by key, the same order on every
   * node, and only sessions older than this login are ended: logins racing each other, which each see
   * the other's new session, agree on which survive instead of ending each other.
   */
  async #enforceLimit(userId: string, currentKey: string, loginAt: number): Promise<void> {
    const max = this.#e.options.maxSessionsPerUser;
    if (max === 0) return;
    const now = this.#e.options.clock.now();
    const live = (await this.#e.call(() => this.#e.store.listByUser(userId), 'listByUser')).filter((r) => !sessionExpired(r, now, this.#e.options));
    // A session in the middle of a renewal is listed twice, under its old ID and its new one: one session.
    const sessions = sessionsOf(live, this.#e.options);
    const excess = sessions.length - max;
    if (excess <= 0) return;
    const before = (a: SessionRecord, at: number, key: string): boolean => a.createdAt < at || (a.createdAt === at && a.key < key);
    const victims = sessions.filter((g) => !g.some((r) => r.key === currentKey) && before(g[0]!, loginAt, currentKey))
      .sort((a, b) => (before(a[0]!, b[0]!.createdAt, b[0]!.key) ? -1 : 1)).slice(0, excess);
    await this.endOwned(userId, victims.flat(), 'limit');
  }

  /**
   * Ends sessions of `userId` listed as `records` (by `destroyUserSession` or `maxSessionsPerUser`);
   * true when this call deleted one of them. Under renewal, a listed session may be renewing its ID
   * meanwhile: its record becomes a pointer, which a plain delete would remove while the session lived
   * on under the new ID. Its copy under the new ID is listed with the user's sessions as soon as it is
   * written, before the pointer is: listed again after the deletions, any copy of an ended session is
   * ended too (a pointer written after a deletion fails its compare-and-set, and its renewal removes
   * the copy itself).
   */
  async endOwned(userId: string, records: readonly SessionRecord[], reason: string): Promise<boolean> {
    const o = this.#e.options;
    // Logins racing each other pick the same victims: each is deleted and reported once.
    return endListed(records, o, o.renewal === null ? null : () => this.#e.call(() => this.#e.store.listByUser(userId), 'listByUser'),
      (r) => this.#e.endOnce(r.key, userId, 'destroyed', reason, recordHandle(r, o.codec)));
  }
}

/**
 * Ends the listed `records` of one user with `end` (true when it deleted the record), then, with
 * `relist` (under renewal), the records listed again that belong to a session ended: a renewal's copy
 * written before its pointer (see Committer.endOwned). True when `end` deleted one of `records`.
 */
export async function endListed(records: readonly SessionRecord[], grouping: Grouping, relist: (() => Promise<SessionRecord[]>) | null,
  end: (r: SessionRecord) => Promise<boolean>): Promise<boolean> {
  let ended = false;
  for (const r of records) if (await end(r)) ended = true;
  if (relist === null || records.length === 0) return ended;
  const done = new Set(records.map((r) => r.key));
  const again = await relist();
  for (const g of sessionsOf([...records, ...again.filter((r) => !done.has(r.key))], grouping)) {
    if (!g.some((r) => done.has(r.key))) continue;
    for (const r of g) {
      if (done.has(r.key)) continue;
      done.add(r.key);
      await end(r);
    }
  }
  return ended;
}

/** What grouping records by session needs of the engine's options: whether IDs are renewed, and the codec. */
export interface Grouping {
  readonly renewal: object | null;
  readonly codec: SessionCodec;
}

function ignore(): void {}

/**
 * One user's records grouped by session: under renewal, a record and its renewal's copy are one
 * session, listed twice while the renewal runs, or, when the store failed the renewal's second write
 * and then the copy's removal, for the copy's idle timeout. They share the session's handle (the copy
 * keeps it, `Envelope.h`), and also its creation, CSRF token, sign-in time and browser, which tell
 * apart the copies renewals wrote before handles were kept. A record whose handle is its own and that has no CSRF token is its own group.
 */
export function sessionsOf(records: readonly SessionRecord[], o: Grouping): SessionRecord[][] {
  if (o.renewal === null) return records.map((r) => [r]);
  const groups: Array<{ marks: Set<string>; records: SessionRecord[] }> = [];
  for (const r of records) {
    const marks = sessionMarks(r, o);
    const g = groups.find((x) => marks.some((m) => x.marks.has(m)));
    if (g) {
      g.records.push(r);
      for (const m of marks) g.marks.add(m);
    } else {
      groups.push({ marks: new Set(marks), records: [r] });
    }
  }
  return groups.map((g) => g.records);
}

/** What a record and its renewal's copy share and other sessions do not: its session's handle, and its creation with its token. */
function sessionMarks(r: SessionRecord, o: Grouping): string[] {
  if (r.data === ENDED || isMoved(r.data)) return [];
  let env: Envelope;
  try {
    env = o.codec.decode(r.data);
  } catch {
    return [];
  }
  const marks = [`h:${env.h ?? handleOf(r.key)}`];
  if (env.c !== undefined) marks.push(JSON.stringify([r.createdAt, env.c, env.a ?? null, env.u ?? null]));
  return marks;
}

/**
 * Whether `current` equals `a` wherever two runs of the same functions, `a` and `b`, agree: where they
 * differ as values, or in their keys, anything is accepted, since that part differs from run to run.
 */
function sameExceptVarying(current: unknown, a: unknown, b: unknown): boolean {
  if (dequal(a, b)) return dequal(current, a);
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return true;
  if (!sameKeys(a, b)) return true;
  if (!isContainer(current) || Array.isArray(current) !== Array.isArray(a) || !sameKeys(current, a)) return false;
  return Object.keys(a).every((k) => sameExceptVarying(current[k], a[k], b[k]));
}

/** Whether JSON.stringify keeps a property holding `v` (it drops undefined, functions and symbols). */
function keptByJson(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

function isContainer(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object';
}

function sameKeys(x: Record<string, unknown>, y: Record<string, unknown>): boolean {
  const kx = Object.keys(x);
  return kx.length === Object.keys(y).length && kx.every((k) => Object.hasOwn(y, k));
}
