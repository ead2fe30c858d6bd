/**
 * RedisStore: sessions in Redis (standalone, Sentinel or Cluster) through ioredis, one round trip per read or write.
 *
 * Each session is one string (record.ts) with a native TTL at its earlier deadline; writes are Lua scripts that do
 * compare-and-set, data, TTL, user index and change notice in one atomic step. docs/stores.md
 * (## RedisStore) gives the key layout, what is atomic in standalone versus Cluster, durability per
 * persistence setting, and why only `maxmemory-policy noeviction` is safe.
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import { StoreClosedError, StoreUnavailableError } from '../../core/errors.js';
import { decimal } from '../../core/decimal.js';
import { SERVER_CLOCK_SYNC_MS, ServerClock, SweptListeners, assertNextVersion, countMargin, deadlineOf, stampOf, assertRegeneration, idCollision, isSessionKey, unsent } from '../../core/store.js';
import type { ChangeFeedState, Clock, CountOptions, DestroyAllOptions, DestroyByUserOptions, SessionRecord, SessionStore, SetResult, SweptListener, SweptSession } from '../../core/store.js';
import { buildClient, resolveRedisStoreOptions } from './options.js';
import type { CommandSender, RedisClient, RedisStoreOptions, ResolvedRedisStoreOptions } from './options.js';
import { CLAIM_DUE, CLAIM_EXPIRED, COUNT_LIVE, DESTROY, DESTROY_BY_USER, DESTROY_EACH, DESTROY_IF_OWNED, INDEX, LIMIT_TAKE, REAP, REGENERATE, SET, SET_REPORTED, TOUCH, UNINDEX } from './scripts.js';
import { checkLimiter, limiterDigest, windowPosition, withinLimit } from '../../core/rate-limit.js';
import type { SharedLimiter } from '../../core/rate-limit.js';
import type { Script } from './scripts.js';
import { decode, digits16, encode } from './record.js';
import { ChangeFeed, changeChannel, escapeGlob, writerTag, type ChangeFeedOptions } from './feed.js';
import { checkEvictionPolicy } from './eviction.js';
import { Deadlines } from '../../core/timeout.js';

export { EVICTION_WARNING_CODE } from './eviction.js';
export { REDIS_STORE_DEFAULTS, redisClientOptions } from './options.js';
export type { RedisClient, RedisStoreOptions } from './options.js';
export type { ChangeFeedOptions } from './feed.js';

const OK: SetResult = Object.freeze({ ok: true });

/**
 * With `reportExpired` on a Cluster: how many hashes of sessions due, `<prefix>due{0}` … `{15}`, each
 * on the slot of its hash tag, so the entries (and the sweeps' work) spread over the primaries.
 */
export const DUE_SHARDS = 16;

/**
 * What the marker key, `<prefix>store`, holds: a store writes it with its first write on each
 * connection, so that a tool opening the app's store (the CLI) can tell a prefix that holds one from
 * a mistyped prefix, which would read as an empty store.
 */
export const STORE_MARKER = 'tether session store';

/** Reads of the user's index a Cluster's destroyByUser makes at most (see there). */
const CLUSTER_DESTROY_BY_USER_ROUNDS = 8;

export class RedisStore implements SessionStore, AsyncDisposable {
  readonly name = 'redis';
  /**
   * Read fence (see SessionStore.fence): a PING on the change feed's subscriber connection, answered
   * after every message already published to it, so when it resolves true every change committed
   * before the call has reached the listeners. False while `feedState !== 'listening'`, if the
   * connection drops meanwhile, or after `commandTimeoutMs` without an answer (the subscriber then
   * reconnects and resyncs). Absent on a Cluster, where pub/sub crosses the cluster bus in no order
   * with a PING. TieredStore coalesces calls.
   */
  readonly fence?: () => Promise<boolean>;
  /**
   * Regeneration in one round trip (see SessionStore.regenerate): the REGENERATE script. Absent on a
   * Cluster, where the two sessions and the indexes may live on different nodes.
   */
  readonly regenerate?: (ended: SessionRecord, expectedVersion: number, created: SessionRecord) => Promise<SetResult>;
  /**
   * With `reportExpired` (see SessionStore.sweep): claims the sessions of the hash of those due whose
   * record Redis expired, or that are past a deadline by the store's clock (then deleted), in batches
   * of HSCAN; returns how many. Absent otherwise: Redis expires records by itself.
   */
  readonly sweep?: () => Promise<number>;
  /** With `reportExpired` (see SessionStore.onSwept): the sessions each sweep claimed, with their owners. */
  readonly onSwept?: (listener: SweptListener) => () => void;
  readonly #client: RedisClient;
  /** The store's own standalone client: commands sent with their arguments as they are (options.ts plainSender). */
  readonly #send: CommandSender | undefined;
  readonly #owned: boolean;
  readonly #cluster: boolean;
  readonly #opts: ResolvedRedisStoreOptions;
  /** Decides expiry: the given clock, or by default a ServerClock following Redis's time (see options.clock). */
  readonly clock: Clock;
  /** The default clock, sampled against Redis `TIME`; undefined when a clock was given. */
  readonly #serverClock: ServerClock | undefined;
  #syncing: Promise<void> | null = null;
  #firstSync: Promise<void> | null = null;
  #syncTimer: NodeJS.Timeout | undefined;
  /** `<prefix>s:` and `<prefix>u:`: session and user-index key prefixes. */
  readonly #sp: string;
  readonly #up: string;
  /** What the scripts publish on: this store's change channel (feed.ts), or '' when publishing is off. */
  readonly #channel: string;
  /** `<prefix>changes`, and this store's tag: its channel is `<prefix>changes:<tag>`. */
  readonly #feedBase: string;
  readonly #tag = writerTag();
  readonly #waiters = new Set<() => void>();
  /** Redis's own answer when it refused the connection's credentials (never holds them), else null. */
  #refused: string | null = null;
  /** Every command's bound (commandTimeoutMs), one ticker for all: no timer per command. */
  readonly #deadlines: Deadlines;
  readonly #onReady = (): void => {
    this.#dropped = false;
    this.#marked = false;
    this.#refused = null;
    this.checkEvictionPolicy().catch(noop);
    void this.#syncClock();
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  };
  #feed: ChangeFeed | null = null;
  /**
   * With `reportExpired`: `<prefix>due`, the hash of sessions that can time out (key → owner, '' when
   * anonymous); '' without. On a Cluster the name of DUE_SHARDS hashes, each with its hash tag (`#dueOf`).
   */
  readonly #due: string;
  readonly #swept = new SweptListeners();
  #sweepTimer: NodeJS.Timeout | undefined;
  /** #hung dropped the connection; cleared when the client is ready again. */
  #dropped = false;
  /** The marker (STORE_MARKER) was sent since the client was last ready. */
  #marked = false;
  #policy: Promise<string | null> | null = null;
  #closed = false;

  /**
   * @example
   * const store = new RedisStore({ url: 'redis://127.0.0.1:6379', keyPrefix: 'shop:' });
   * const cluster = new RedisStore({ cluster: { nodes: [{ host: '10.0.0.1', port: 7000 }] } });
   */
  constructor(options: RedisStoreOptions = {}) {
    this.#opts = resolveRedisStoreOptions(options);
    this.clock = this.#opts.clock;
    this.#serverClock = this.clock instanceof ServerClock ? this.clock : undefined;
    this.#deadlines = new Deadlines(this.#opts.commandTimeoutMs, {
      passErrors: true,
      late: (what, ms) => `RedisStore: no reply from Redis to ${what} within ${ms} ms (options.commandTimeoutMs)`,
      onLate: () => this.#hung(),
    });
    const { client, owned, send } = buildClient(options);
    this.#client = client;
    this.#send = send;
    this.#owned = owned;
    this.#cluster = client.isCluster;
    this.#sp = `${this.#opts.keyPrefix}s:`;
    this.#up = `${this.#opts.keyPrefix}u:`;
    this.#feedBase = `${this.#opts.keyPrefix}changes`;
    this.#channel = this.#opts.publishChanges ? changeChannel(this.#feedBase, this.#tag) : '';
    this.#due = this.#opts.reportExpired ? `${this.#opts.keyPrefix}due` : '';
    // An 'error' event without a listener would be printed by ioredis; failures reach callers as
    // STORE_UNAVAILABLE instead, and the client keeps reconnecting on its own.
    client.on('error', (err: unknown) => {
      this.#refused = refusalOf(err);
    });
    client.on('ready', this.#onReady);
    if (this.#due !== '') {
      // A login's two writes go through SET_REPORTED each (the ended record leaves the hash, the new one enters it).
      this.sweep = () => this.#sweep();
      this.onSwept = (listener) => this.#swept.add(listener);
      if (this.#opts.sweepIntervalMs > 0) {
        this.#sweepTimer = setInterval(() => void this.#sweep().catch(noop), this.#opts.sweepIntervalMs);
        this.#sweepTimer.unref();
      }
    } else if (!this.#cluster) {
      this.regenerate = (ended, expectedVersion, created) => this.#regenerate(ended, expectedVersion, created);
    }
    if (!this.#cluster) {
      this.fence = () => {
        if (this.#closed) return Promise.reject(new StoreClosedError('RedisStore'));
        return this.#feed ? this.#feed.fence() : Promise.resolve(false);
      };
    }
  }

  /** The change feed's state: `idle` until someone subscribes, then `listening` while subscribed (see ChangeFeedState). */
  get feedState(): ChangeFeedState {
    if (this.#closed) return 'closed';
    return this.#feed ? this.#feed.state : 'idle';
  }

  async get(key: string): Promise<SessionRecord | null> {
    this.#open();
    if (!this.#ready()) await this.#whenReady();
    // Until Redis's time has been sampled once, a read waits for that sample (sent alongside the GET,
    // so no longer than the GET itself): it decides an expiry.
    const firstSync = this.#serverClock?.synced === false ? this.#firstSync ?? this.#syncClock() : null;
    let value: string | null;
    try {
      value = await this.#bound('GET', () => this.#send ? this.#send('get', [this.#sp + key]) as Promise<string | null> : this.#client.get(this.#sp + key));
    } catch (err) {
      throw this.#fail('get', err);
    }
    if (firstSync) await firstSync;
    return decode(key, value, this.clock.now());
  }

  async set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    this.#open();
    assertNextVersion(record, expectedVersion);
    if (!this.#ready()) await this.#whenReady();
    const { key, userId } = record;
    const skey = this.#sp + key;
    const value = encode(record);
    const now = this.clock.now();
    // Whole milliseconds: PEXPIRE refuses fractions, and a clock may return them.
    const ttl = Math.ceil((record.expiresAt < record.absoluteExpiresAt ? record.expiresAt : record.absoluteExpiresAt) - now);
    const stamp = stampOf(record);
    let mode = '0';
    let reply: number | string;
    if (!this.#marked) this.#mark();
    try {
      if (userId !== null && this.#cluster && ttl > 0) {
        // Index first, on the user's slot: if the session write then fails or never happens, the
        // index holds one entry too many (filtered on read), never one too few.
        await this.#eval(INDEX, 1, [this.#up + userId, key, record.absoluteExpiresAt, now]);
        mode = '2';
      } else if (userId !== null) {
        // On a Cluster, a record being ended is left out of the index (the script deletes it, and an
        // entry it had is pruned once its deadline passes): adding it would cost a round trip.
        mode = this.#cluster ? '2' : '1';
      }
      // KEYS, then only the ARGV this mode reads (see SET in scripts.ts).
      const args: Array<string | number> = mode === '1' ? [skey, this.#up + userId] : [skey];
      const numKeys = args.length;
      args.push(expectedVersion, now, value, ttl, mode, this.#channel, this.#message(key, stamp));
      // Whether this record can time out: not an ending, not a renewal's pointer (its deadline is its
      // lastSeenAt), not a user context.
      const due = this.#due !== '' && ttl > 0 && isSessionKey(key) && deadlineOf(record) > record.lastSeenAt;
      if (this.#due !== '' && !this.#cluster) {
        // Every argument, then the hash of sessions due and whether this record can time out.
        args.push(userId ?? '', record.absoluteExpiresAt, key, this.#due, due ? '1' : '0');
        reply = await this.#eval(SET_REPORTED, numKeys, args) as number | string;
      } else {
        // On a Cluster the hash is on another slot: a record that cannot time out leaves it first, so
        // that no sweep reports an ending as a timeout (should the write then fail, a report is missed,
        // never a false one made). One that can enters it once written (below).
        if (this.#due !== '' && !due && isSessionKey(key)) await this.#undue([key]);
        if (userId !== null) args.push(userId);
        if (mode === '1') args.push(record.absoluteExpiresAt, key);
        reply = await this.#eval(SET, numKeys, args) as number | string;
      }
      if (due && this.#cluster && !(typeof reply === 'number' && reply >= 0)) await this.#listDue(key, userId);
    } catch (err) {
      throw this.#fail('set', err);
    }
    if (typeof reply === 'number' && reply >= 0) return { ok: false, current: reply };
    this.#published(key, stamp);
    if (typeof reply === 'string') await this.#unindex(reply, key);
    return OK;
  }

  async #regenerate(ended: SessionRecord, expectedVersion: number, created: SessionRecord): Promise<SetResult> {
    this.#open();
    assertRegeneration(ended, expectedVersion, created);
    const now = this.clock.now();
    // The script deletes the old record; one still live at `now` goes the way of any write.
    if (deadlineOf(ended) > now) {
      const res = await this.set(ended, expectedVersion);
      return res.ok ? this.set(created, 0) : res;
    }
    if (!this.#ready()) await this.#whenReady();
    const ttl = Math.ceil(deadlineOf(created) - now);
    const oldMode = ended.userId === null ? '0' : '1';
    const newMode = created.userId === null ? '0' : '1';
    const keys = [this.#sp + ended.key, this.#sp + created.key];
    if (oldMode === '1') keys.push(this.#up + ended.userId);
    if (newMode === '1') keys.push(this.#up + created.userId);
    const endedStamp = stampOf(ended);
    const createdStamp = stampOf(created);
    let reply: unknown;
    if (!this.#marked) this.#mark();
    try {
      reply = await this.#eval(REGENERATE, keys.length, [...keys, now, this.#channel,
        expectedVersion, oldMode, this.#message(ended.key, endedStamp), ended.userId ?? '', ended.key,
        encode(created), ttl, newMode, this.#message(created.key, createdStamp), created.userId ?? '', created.absoluteExpiresAt, created.key]);
    } catch (err) {
      throw this.#fail('regenerate', err);
    }
    if (reply === -2) throw idCollision();
    if (typeof reply === 'number') return { ok: false, current: reply };
    const [old, fresh] = reply as [number | string, number | string];
    this.#published(ended.key, endedStamp);
    this.#published(created.key, createdStamp);
    if (typeof old === 'string') await this.#unindex(old, ended.key);
    if (typeof fresh === 'string') await this.#unindex(fresh, created.key);
    return OK;
  }

  async touch(key: string, expiresAt: number, lastSeenAt: number, expected?: number): Promise<boolean> {
    this.#open();
    const patch = digits16(lastSeenAt, 'lastSeenAt') + digits16(expiresAt, 'expiresAt');
    if (!this.#ready()) await this.#whenReady();
    let version: number;
    try {
      // expiresAt as its digits (checked whole above): the script puts the string into the stamp as is.
      // It answers the version it found, 0 when there was nothing to touch.
      version = await this.#eval(TOUCH, 1, [this.#sp + key, this.clock.now(), decimal(expiresAt), patch, key, this.#channel,
        expected === undefined ? '' : decimal(expected)]) as number;
    } catch (err) {
      throw this.#fail('touch', err);
    }
    if (version === 0) return false;
    this.#published(key, stampOf({ version, expiresAt }));
    return true;
  }

  async destroy(key: string): Promise<void> {
    this.#open();
    if (!this.#ready()) await this.#whenReady();
    let owner: string | null;
    try {
      await this.#undue([key]);
      owner = await this.#eval(DESTROY, 1, [this.#sp + key, key, this.#channel]) as string | null;
    } catch (err) {
      throw this.#fail('destroy', err);
    }
    this.#published(key);
    if (owner !== null) await this.#unindex(owner, key);
  }

  async listByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    if (!this.#ready()) await this.#whenReady();
    try {
      const members = await this.#bound('ZRANGE', () => this.#client.zrange(this.#up + userId, '0', '-1'));
      if (members.length === 0) return [];
      const values = await this.#fetch(members);
      const now = this.clock.now();
      const out: SessionRecord[] = [];
      for (let i = 0; i < members.length; i++) {
        const rec = decode(members[i]!, values[i] ?? null, now);
        // The index may name sessions that ended or changed owner; the record itself decides.
        if (rec !== null && rec.userId === userId) out.push(rec);
      }
      return out;
    } catch (err) {
      throw this.#fail('listByUser', err);
    }
  }

  /** Counts, of the sessions removed, those live by more than `marginMs` (see SessionStore.destroyByUser). */
  async destroyByUser(userId: string, options: DestroyByUserOptions = {}): Promise<number> {
    this.#open();
    const margin = countMargin(options, 'destroyByUser');
    if (!this.#ready()) await this.#whenReady();
    const except = options.except ?? [];
    const idx = this.#up + userId;
    try {
      let removed: number;
      let members: string[];
      if (!this.#cluster) {
        // One script reads the index and deletes: a login or renewal of one of these sessions on another
        // node, landing between a read of the index here and the deletions, would leave its new key alive.
        const keys = this.#due === '' ? [idx, this.#sp] : [idx, this.#sp, this.#due];
        const reply = await this.#eval(DESTROY_BY_USER, keys.length, [...keys, userId, this.clock.now() + margin, this.#channel, ...except]) as Array<number | string>;
        removed = Number(reply[0]);
        members = reply.slice(1).map(String);
      } else {
        const keep = new Set(except);
        members = [];
        removed = 0;
        // The index is read again until it lists nothing new: a renewal that rewrote a listed session as an
        // ownerless pointer before its deletion here has indexed the session's new key by then, which the
        // first read may not have listed; a login's new key likewise.
        for (let round = 0; round < CLUSTER_DESTROY_BY_USER_ROUNDS; round++) {
          const listed = (await this.#bound('ZRANGE', () => this.#client.zrange(idx, '0', '-1'))).filter((m) => !keep.has(m));
          for (const m of listed) keep.add(m);
          if (listed.length === 0) break;
          members.push(...listed);
          await this.#undue(listed);
          const after = this.clock.now() + margin;
          // Cluster: each session on its own slot, deleted only if still this user's. The index entries
          // stay until pruned by deadline: removing one here could race a re-created session of the same key.
          const each = await Promise.all(listed.map((m) =>
            this.#eval(DESTROY_IF_OWNED, 1, [this.#sp + m, userId, after, m, this.#channel]) as Promise<number>));
          removed += each.reduce((a, b) => a + b, 0);
        }
      }
      // Every listed key is reported, also one another user owns now: a removal report only drops a copy.
      for (const m of members) this.#published(m);
      return removed;
    } catch (err) {
      throw this.#fail('destroyByUser', err);
    }
  }

  /**
   * Whether this key prefix holds a Tether store: the marker key its writes leave (`<prefix>store`, see
   * STORE_MARKER), or, for a store not written to since a release before the marker, any session or
   * user index key (SCAN over every primary, stopping at the first found). For tools that open the
   * app's store, such as `tether sessions`: a mistyped `keyPrefix` reads as an empty store, and
   * "0 sessions" or "ended 0" would be a false all-clear. O(keys) when the prefix holds nothing.
   */
  async holdsStore(): Promise<boolean> {
    this.#open();
    if (!this.#ready()) await this.#whenReady();
    try {
      if (await this.#bound('GET', () => this.#client.get(this.#marker())) === STORE_MARKER) return true;
      const pattern = `${escapeGlob(this.#opts.keyPrefix)}[su]:*`;
      const nodes = this.#cluster ? (this.#client as Cluster).nodes('master') : [this.#client as Redis];
      for (const node of nodes) {
        let cursor = '0';
        for (let i = 0; i < 10_000_000; i++) {
          const [next, keys] = await this.#bound('SCAN', () => node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
          if (keys.length > 0) return true;
          cursor = next;
          if (cursor === '0') break;
        }
      }
      return false;
    } catch (err) {
      throw this.#fail('holdsStore', err);
    }
  }

  /**
   * How many live sessions exist under this prefix, user contexts and renewals' pointers not counted:
   * a SCAN over every primary, each batch's headers read by one script (on a Cluster, one call per
   * key). O(keys), for admin pages and `maxActive`'s spaced counts. With `marginMs`, a session within
   * that of its deadline is left out too (see SessionStore.count): the scripts are given a later now.
   */
  async count(options?: CountOptions): Promise<number> {
    this.#open();
    const margin = countMargin(options);
    if (!this.#ready()) await this.#whenReady();
    const contexts = this.#sp + 'user:';
    let total = 0;
    try {
      await this.#scan(async (keys) => {
        const sessions = keys.filter((k) => !k.startsWith(contexts));
        if (sessions.length === 0) return;
        const after = this.clock.now() + margin;
        const batches = this.#cluster ? sessions.map((k) => [k]) : [sessions];
        const counted = await Promise.all(batches.map((batch) => this.#eval(COUNT_LIVE, batch.length, [...batch, after]) as Promise<number>));
        for (const n of counted) total += n;
      });
    } catch (err) {
      throw this.#fail('count', err);
    }
    return total;
  }

  /**
   * Ends every session (see SessionStore.destroyAll): a SCAN over every primary, each batch of about
   * a thousand session keys deleted by one script (on a Cluster, one call per session, each on its
   * node), which publishes each removal; owners' index entries are then dropped as `destroy` drops
   * them (on a Cluster they stay until pruned by deadline, as in destroyByUser). User contexts stay.
   * With `marginMs`, a session within that of its deadline is removed but not counted (see
   * SessionStore.destroyAll): the scripts are given a later now, as count's are.
   */
  async destroyAll(options?: DestroyAllOptions): Promise<number> {
    this.#open();
    const margin = countMargin(options, 'destroyAll');
    if (!this.#ready()) await this.#whenReady();
    let removed = 0;
    try {
      await this.#scan(async (keys) => {
        const members = keys.map((k) => k.slice(this.#sp.length)).filter(isSessionKey);
        if (members.length === 0) return;
        await this.#undue(members);
        const after = this.clock.now() + margin;
        const batches = this.#cluster ? members.map((m) => [m]) : [members];
        const results = await Promise.all(batches.map((batch) =>
          this.#eval(DESTROY_EACH, batch.length, [...batch.map((m) => this.#sp + m), after, this.#channel, ...batch]) as Promise<Array<number | string>>));
        const owned: Array<Promise<void>> = [];
        for (const [live, ...deleted] of results) {
          removed += live as number;
          for (let i = 0; i < deleted.length; i += 2) {
            const member = deleted[i] as string;
            const owner = deleted[i + 1] as string;
            this.#published(member);
            if (owner !== '') owned.push(this.#unindex(owner, member));
          }
        }
        await Promise.all(owned);
      });
    } catch (err) {
      throw this.#fail('destroyAll', err);
    }
    return removed;
  }

  /**
   * With `reportExpired`: takes sessions about to be removed out of the hash of those due, before they
   * are removed, so that a sweep never reports a logout as a timeout. Should the removal then fail, the
   * session, still there, is no longer reported when it times out: a report missed, never a false one.
   */
  async #undue(members: string[]): Promise<void> {
    if (this.#due === '') return;
    if (!this.#cluster) {
      await this.#bound('HDEL', () => this.#client.hdel(this.#due, ...members));
      return;
    }
    const byHash = new Map<string, string[]>();
    for (const m of members) {
      const hash = this.#dueOf(m);
      const list = byHash.get(hash);
      if (list) list.push(m);
      else byHash.set(hash, [m]);
    }
    await Promise.all([...byHash].map(([hash, list]) => this.#bound('HDEL', () => this.#client.hdel(hash, ...list))));
  }

  /**
   * On a Cluster, with `reportExpired`: lists a session just written in the hash of those due. A failure
   * is not the write's (it is stored): the session is then not reported when it times out, unless a
   * later write lists it. A process that stalls between the write and this longer than the session's
   * idle timeout could list a session a sweep has reported already, and it would be reported again:
   * the one way a Cluster's report can come twice, where one server's cannot.
   */
  async #listDue(key: string, userId: string | null): Promise<void> {
    const hash = this.#dueOf(key);
    await this.#bound('HSET', () => this.#client.hset(hash, key, userId ?? '')).catch(noop);
  }

  /** The hash of sessions due that lists `key`: the one hash on one server, one of DUE_SHARDS on a Cluster. */
  #dueOf(key: string): string {
    if (!this.#cluster) return this.#due;
    let h = 0;
    for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
    return this.#dueShard(h % DUE_SHARDS);
  }

  /** The `i`-th hash of sessions due on a Cluster: its hash tag puts it on a slot of its own. */
  #dueShard(i: number): string {
    return `${this.#due}{${i}}`;
  }

  /**
   * See `sweep`: HSCAN over the hash of sessions due (each of them on a Cluster), each batch claimed by
   * CLAIM_EXPIRED (on a Cluster: REAP on each session's slot, then CLAIM_DUE on the hash's), each
   * batch's claims reported.
   */
  async #sweep(): Promise<number> {
    if (this.#closed) return 0;
    if (!this.#ready()) await this.#whenReady();
    const hashes = this.#cluster ? Array.from({ length: DUE_SHARDS }, (_, i) => this.#dueShard(i)) : [this.#due];
    let claimed = 0;
    try {
      for (const hash of hashes) {
        let cursor = '0';
        for (let i = 0; i < 10_000_000; i++) {
          const [next, flat] = await this.#bound('HSCAN', () => this.#client.hscan(hash, cursor, 'COUNT', 500));
          cursor = next;
          const members: string[] = [];
          for (let j = 0; j < flat.length; j += 2) members.push(flat[j]!);
          if (members.length > 0) {
            const out = await this.#claim(hash, members);
            const swept: SweptSession[] = [];
            for (let j = 0; j < out.length; j += 2) swept.push({ key: out[j]!, userId: out[j + 1] === '' ? null : out[j + 1]! });
            claimed += swept.length;
            if (this.#swept.active) this.#swept.reportSessions(swept);
          }
          if (cursor === '0' || this.#closed) break;
        }
        if (this.#closed) break;
      }
    } catch (err) {
      throw this.#fail('sweep', err);
    }
    return claimed;
  }

  /** Claims the members of one hash of sessions due whose records are gone or past a deadline: key, owner pairs. */
  async #claim(hash: string, members: string[]): Promise<string[]> {
    const now = this.clock.now();
    if (!this.#cluster) return await this.#eval(CLAIM_EXPIRED, 0, [hash, now, this.#sp, ...members]) as string[];
    const gone = await Promise.all(members.map((m) => this.#eval(REAP, 1, [this.#sp + m, now]) as Promise<number>));
    const dead = members.filter((_, i) => gone[i] === 1);
    return dead.length === 0 ? [] : await this.#eval(CLAIM_DUE, 1, [hash, ...dead]) as string[];
  }

  /** Every key under the session prefix, in SCAN batches handed to `each` one at a time, on every primary. */
  async #scan(each: (keys: string[]) => void | Promise<void>): Promise<void> {
    const pattern = `${escapeGlob(this.#sp)}*`;
    const nodes = this.#cluster ? (this.#client as Cluster).nodes('master') : [this.#client as Redis];
    for (const node of nodes) {
      let cursor = '0';
      for (let i = 0; i < 10_000_000; i++) {
        const [next, keys] = await this.#bound('SCAN', () => node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
        if (keys.length > 0) await each(keys);
        cursor = next;
        if (cursor === '0') break;
      }
    }
  }

  /**
   * A rate limiter counted in Redis (see SessionStore.limiter), so every process and machine on this
   * prefix counts together: a key's counts are two keys, `<prefix>l:<name>:{<digest>}:<window start>`
   * (the digest of the name and the key, never the key; one hash tag, so one slot on a Cluster), kept
   * until the window after theirs ends. A take is one script (MGET, then INCR and PEXPIRE when it
   * fits), a peek one MGET. Time is the store's clock, so machines agree on the windows.
   */
  limiter(name: string, limit: number, windowMs: number): SharedLimiter {
    checkLimiter(name, limit, windowMs);
    const base = `${this.#opts.keyPrefix}l:${name}:`;
    const keysAt = (key: string, start: number): [string, string] => {
      const tagged = `${base}{${limiterDigest(name, key)}}:`;
      return [tagged + decimal(start), tagged + decimal(start - windowMs)];
    };
    return {
      take: async (key) => {
        this.#open();
        if (!this.#ready()) await this.#whenReady();
        const now = this.clock.now();
        const { start, previousWeight } = windowPosition(now, windowMs);
        try {
          const counted = await this.#eval(LIMIT_TAKE, 2, [...keysAt(key, start), limit, previousWeight.toFixed(6), decimal(start + 2 * windowMs - now)]);
          return counted === 1;
        } catch (err) {
          throw this.#fail('limiter take', err);
        }
      },
      peek: async (key) => {
        this.#open();
        if (!this.#ready()) await this.#whenReady();
        const { start, previousWeight } = windowPosition(this.clock.now(), windowMs);
        let counts: Array<string | null>;
        try {
          counts = await this.#bound('MGET', () => this.#client.mget(...keysAt(key, start)));
        } catch (err) {
          throw this.#fail('limiter peek', err);
        }
        return withinLimit(Number(counts[1] ?? 0), Number(counts[0] ?? 0), previousWeight, limit);
      },
    };
  }

  /**
   * Calls `listener(key, stamp)` after any client with the same prefix changed or removed `key` (stamp:
   * see SessionStore.subscribe; messages carry it as feed.ts describes). Pub/sub
   * is at-most-once: `onResync` runs each time the subscription is (re)established, after which
   * every change is seen; anything a listener cached before may be stale and should be dropped.
   */
  subscribe(listener: (key: string, stamp?: string) => void, options: ChangeFeedOptions = {}): () => void {
    this.#open();
    this.#feed ??= new ChangeFeed(this.#client, this.#feedBase, this.#tag, this.#opts.commandTimeoutMs);
    return this.#feed.add(listener, options);
  }

  /**
   * Reads `maxmemory-policy` (on every primary) and warns once, code TETHER_REDIS_EVICTION, unless it
   * is `noeviction`. Runs by itself on the first connection; resolves with the policy found (an
   * unsafe one first), or null when CONFIG is disabled or denied.
   */
  checkEvictionPolicy(): Promise<string | null> {
    this.#policy ??= (async () => {
      if (!this.#ready()) await this.#whenReady();
      return this.#bound('CONFIG GET', () => checkEvictionPolicy(this.#client));
    })();
    // A connection failure is not an answer: the next connection asks again.
    this.#policy.catch(() => { this.#policy = null; });
    return this.#policy;
  }

  /** `close()`, for `await using store = new …Store(…)`: the store is closed when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#syncTimer);
    clearInterval(this.#sweepTimer);
    this.#swept.clear();
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    await this.#feed?.close();
    this.#client.off('ready', this.#onReady);
    if (!this.#owned) {
      this.#client.off('error', noop);
      return;
    }
    if (!this.#ready()) {
      this.#client.disconnect();
      return;
    }
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError('RedisStore');
  }

  /**
   * A command passed commandTimeoutMs on a connection that is up: the server took it and does not
   * answer (hung, or a network that holds what it is sent). Every command sent after it would wait in
   * the client's queue, holding its arguments (a session's data), for as long as that lasts: at a
   * thousand writes a second, tens of megabytes every ten seconds. So the store drops the connection:
   * the queued commands fail at once (their callers gave up already, at their own deadlines), and the
   * client reconnects, sending nothing until the server answers again (no offline queue). Only the
   * store's own standalone client: a caller's client is used as configured, and a Cluster client's
   * nodes reconnect on their own.
   */
  #hung(): void {
    if (!this.#owned || this.#cluster || this.#closed || !this.#ready()) return;
    // Destroyed, not ended: a hung server would not answer the FIN either. ioredis sees the close,
    // fails what was queued, and reconnects by its retry strategy; until its next 'ready', calls wait
    // for the new connection instead of writing to the old one.
    const stream = (this.#client as Redis).stream;
    if (!stream || stream.destroyed) return;
    this.#dropped = true;
    stream.destroy();
  }

  /**
   * Leaves the marker (STORE_MARKER) once per connection, sent just before the connection's first
   * write, in the same batch and not waited for: the write costs nothing more, and a store only read
   * (the CLI's) marks nothing. A failure is the marker's alone, and is not tried again before the next
   * connection: a server whose ACL refuses the key would otherwise be sent it with every write.
   */
  #mark(): void {
    this.#marked = true;
    this.#bound('SET', () => this.#client.set(this.#marker(), STORE_MARKER)).catch(noop);
  }

  #marker(): string {
    return `${this.#opts.keyPrefix}store`;
  }

  /** The client can take commands: connected and ready, and not on a connection #hung dropped. */
  #ready(): boolean {
    return this.#client.status === 'ready' && !this.#dropped;
  }

  /** The change message a set leaving `key` at `stamp` publishes (feed.ts), or '' when publishing is off. */
  #message(key: string, stamp: string): string {
    return this.#channel === '' ? '' : `=${stamp} ${key}`;
  }

  /**
   * A change this store's script published (`stamp` undefined for a removal): Redis sends it to every
   * other store's feed, not back to this one's (feed.ts), so this store's own listeners hear it from
   * here, once the write is acknowledged.
   */
  #published(key: string, stamp?: string): void {
    if (this.#channel !== '') this.#feed?.deliver(key, stamp);
  }

  /**
   * Samples Redis `TIME` into the default ServerClock (one sample at a time): on every connection,
   * before the first read, and every minute while the store is open. A failed sample keeps the last offset.
   */
  #syncClock(): Promise<void> {
    const clock = this.#serverClock;
    if (!clock || this.#closed) return Promise.resolve();
    this.#syncTimer ??= setInterval(() => void this.#syncClock(), SERVER_CLOCK_SYNC_MS).unref();
    const sync = this.#syncing ??= (async () => {
      try {
        const sentAt = clock.local.now();
        const [seconds, micros] = await this.#bound('TIME', () => this.#client.time());
        clock.sample(sentAt, Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000), clock.local.now());
      } catch {
        // Not connected: the next connection samples again.
      } finally {
        this.#syncing = null;
      }
    })();
    this.#firstSync ??= sync;
    return sync;
  }

  /** Waits (at most commandTimeoutMs) for the connection; the client reconnects by itself meanwhile. */
  #whenReady(): Promise<void> {
    const client = this.#client;
    if (client.status === 'wait') client.connect().catch(noop);
    if (client.status === 'end') {
      return Promise.reject(unsent(new StoreUnavailableError('RedisStore: the Redis client was closed (status end) and will not reconnect')));
    }
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        if (this.#closed) reject(new StoreClosedError('RedisStore'));
        else resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        // A server that answers but refuses the password is not an outage: say so, in Redis's words.
        const refused = this.#refused === null ? '' : `: Redis refused the credentials (${this.#refused}); check the URL's user and password`;
        // Nothing was sent: a caller's write cannot land later.
        reject(unsent(new StoreUnavailableError(`RedisStore: no connection to Redis within ${this.#opts.commandTimeoutMs} ms `
          + `(status ${client.status}; options.commandTimeoutMs)${refused}`)));
      }, this.#opts.commandTimeoutMs);
      this.#waiters.add(wake);
    });
  }

  /**
   * EVALSHA, falling back to EVAL once after a server restart or failover emptied the script cache.
   * `argv` is the keys (the first `numKeys`) then the arguments, in one array.
   */
  async #eval(script: Script, numKeys: number, argv: Array<string | number>): Promise<unknown> {
    try {
      return await this.#bound('EVALSHA', () => {
        if (this.#send === undefined) return this.#client.evalsha(script.sha, numKeys, ...argv);
        const args: Array<string | number> = [script.sha, numKeys];
        for (let i = 0; i < argv.length; i++) args.push(argv[i]!);
        return this.#send('evalsha', args);
      });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.#bound('EVAL', () => this.#client.eval(script.lua, numKeys, ...argv));
    }
  }

  /** A command under commandTimeoutMs: a server that accepts the connection but never replies still fails the call. */
  #bound<T>(what: string, call: () => Promise<T>): Promise<T> {
    // Only a standalone client the store built: a caller's client is used as configured, and a
    // Cluster client pipelines itself.
    if (this.#owned && !this.#cluster) this.#cork();
    return this.#deadlines.run(call, what);
  }

  /**
   * Holds the connection's writes until the event loop's check phase, so the commands of every request
   * handled in this turn go out in one write: one syscall on each side instead of one per command.
   * The same batching as ioredis's auto-pipelining, without its per-batch Pipeline and per-command
   * promise, which cost about 70 µs of CPU per write in the benchmark (bench/analysis.md item 15).
   */
  #cork(): void {
    const stream = (this.#client as Redis).stream;
    if (!stream || stream.writableCorked > 0) return;
    stream.cork();
    setImmediate(() => stream.uncork());
  }

  /** Standalone only: drop `key` from a former owner's index, atomically unless it is theirs again. */
  async #unindex(owner: string, key: string): Promise<void> {
    if (this.#cluster) return;
    // Best effort: the record change is already done, and listByUser ignores stale index entries.
    await this.#eval(UNINDEX, 2, [this.#up + owner, this.#sp + key, key, owner]).catch(noop);
  }

  /** The values of many sessions: one MGET on a single server; on a Cluster, GETs sent at once, each to its node. */
  #fetch(members: string[]): Promise<Array<string | null>> {
    if (this.#cluster) return this.#bound('GET', () => Promise.all(members.map((m) => this.#client.get(this.#sp + m))));
    const keys = members.map((m) => this.#sp + m);
    return this.#bound('MGET', () => this.#send ? this.#send('mget', keys) as Promise<Array<string | null>> : this.#client.mget(keys));
  }

  #fail(op: string, err: unknown): Error {
    if (this.#closed) return new StoreClosedError('RedisStore');
    if (err instanceof StoreUnavailableError || err instanceof StoreClosedError) return err;
    // ioredis attaches the command and its arguments (keys, session data) to reply errors; keep
    // only the message so a logged cause never carries them.
    const e = err as Error;
    const cause = new Error(e?.message ?? String(err));
    cause.name = e?.name ?? 'Error';
    return new StoreUnavailableError(`RedisStore ${op} failed: ${cause.message}`, { cause });
  }
}

function noop(): void {}

/**
 * Redis's answer to credentials it refused (WRONGPASS, NOAUTH, a bad user), first line and bounded;
 * null for any other error. Redis never echoes the password it was sent.
 */
function refusalOf(err: unknown): string | null {
  const message = err instanceof Error ? err.message : '';
  if (!/^(?:WRONGPASS|NOAUTH|NOPERM)\b|invalid (?:username-)?password|(?:ERR )?AUTH\b/.test(message)) return null;
  return message.split('\n')[0]!.slice(0, 240);
}
