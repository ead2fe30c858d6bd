/**
 * The Lua scripts RedisStore runs server-side, so each compare-and-set, touch or destroy is one atomic step.
 *
 * A session is a string under `<prefix>s:<key>` laid out as record.ts describes (a fixed header, then
 * owner and data; Lua offsets below are 1-based); a user's index is a sorted set
 * under `<prefix>u:<userId>` whose members are store keys, scored with the highest
 * `absoluteExpiresAt` ever written for that member (a session never lives past it, so an entry whose
 * score has passed is certainly dead). Every script but DESTROY_BY_USER touches the keys it is given and no other, so each
 * runs on Redis Cluster too; the two that touch two keys (an index and a session) are only used when
 * one server holds every key, and so are two of `reportExpired` (SET_REPORTED, CLAIM_EXPIRED),
 * which also reach the hash of sessions due, `<prefix>due`, named in their arguments, and DESTROY_BY_USER,
 * which reaches the sessions its index lists; on a Cluster
 * the hash is split in DUE_SHARDS, each on its own slot, and REAP and CLAIM_DUE take their place. Times come in as decimal epoch milliseconds from the store's clock, and
 * TTLs are set relative to that clock (PEXPIRE deadline − now, not PEXPIREAT): the store's clock is
 * the one authority on expiry, and Redis's own clock, wherever it stands, never ends a session early.
 * Change messages follow feed.ts: `=<version>:<expiresAt> <key>` after a set or touch, `!<key>` after
 * a removal. Numbers reach a message as strings or through `%d`: Lua's own number formatting would
 * print 13-digit epoch milliseconds in exponent form.
 * @module
 */
import { createHash } from 'node:crypto';
import { MOVED_PREFIX } from '../../core/renewal.js';

/** A script and its SHA-1, for EVALSHA. */
export class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
}

/**
 * How long a user-index entry outlives its session's absolute deadline before it is pruned: covers
 * clock skew between the app processes that write and prune it (F14 allows ±5 min). Index entries
 * are verified on read, so a longer stay costs only memory.
 */
export const INDEX_GRACE_MS = 5 * 60_000;

/**
 * Adds a member to a user index (score only ever grows), drops entries whose deadline passed more
 * than the grace ago, and keeps the index itself alive until its latest member's deadline plus the grace.
 */
const INDEX_ADD = `
local grace = ${INDEX_GRACE_MS}
local function indexAdd(idx, member, score, now)
  redis.call('ZADD', idx, 'GT', score, member)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. string.format('%d', now - grace))
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIRE', idx, string.format('%d', tonumber(top[2]) - now + grace)) end
end
`;

/**
 * Reading the record header: present?, live at `now`?, a renewal's pointer (MOVED_PREFIX in renewal.ts:
 * ownerless, its lastSeenAt its deadline, its data naming the new ID; the data read only when the
 * header could be one)?, owner (false when anonymous).
 */
const RECORD = `
local function head(s)
  local h = redis.call('GETRANGE', s, 0, 96)
  if #h < 97 then return nil end
  return h
end
local function live(h, now)
  return tonumber(string.sub(h, 49, 64)) > now and tonumber(string.sub(h, 65, 80)) > now
end
local function pointer(s, h)
  if string.sub(h, 33, 48) ~= string.sub(h, 49, 64) or string.sub(h, 81, 81) == 'u' then return false end
  return redis.call('GETRANGE', s, 97, ${96 + MOVED_PREFIX.length}) == '${MOVED_PREFIX}'
end
local function owner(s, h)
  if string.sub(h, 81, 81) ~= 'u' then return false end
  local n = tonumber(string.sub(h, 82, 89))
  if n == 0 then return '' end
  return redis.call('GETRANGE', s, 97, 96 + n)
end
`;

/**
 * The compare-and-set of one record, as a function the SET and REGENERATE scripts call: writes
 * `record` under `s`, whose header the caller has read into `h` (head), iff the live version there is
 * `expected` (0 when absent or past a deadline). `ttl` is the ms until the record's earlier deadline,
 * as a string: a record written already past one (how a regeneration ends the old session) is deleted
 * instead. `mode` '0' anonymous, '1' owner + index `idx` here (the entry added with score `absExp`, or
 * removed on a delete), '2' owner, index written separately. `channel` '' = publish nothing. Returns
 * the live version on a conflict (an integer ≥ 0); when written, -1, or the previous owner when it
 * differs from `userId`, so the caller can tidy that index.
 */
const PUT = `${INDEX_ADD}${RECORD}
local function put(s, h, idx, expected, now, record, ttl, mode, channel, message, userId, absExp, member)
  local v = 0
  if h and live(h, now) then v = tonumber(string.sub(h, 1, 16)) end
  if v ~= expected then return v end
  local prev = false
  if h then prev = owner(s, h) end
  if tonumber(ttl) > 0 then
    redis.call('SET', s, record, 'PX', ttl)
    if mode == '1' then indexAdd(idx, member, absExp, now) end
  else
    redis.call('DEL', s)
    if mode == '1' then redis.call('ZREM', idx, member) end
  end
  if channel ~= '' then redis.call('PUBLISH', channel, message) end
  if prev and (mode == '0' or prev ~= userId) then return prev end
  return -1
end
`;

/**
 * Compare-and-set of a whole record (`put`). Arguments the write does not need are not sent: handing
 * Lua each one costs redis-server about 0.3 µs, and ioredis as much again to build the command.
 * KEYS[1] session; KEYS[2] the new owner's index, in mode '1' only.
 * ARGV: 1 expectedVersion, 2 now, 3 the encoded record, 4 ms until the earlier deadline, 5 mode,
 * 6 change channel ('' = none), 7 the change message; unless mode is '0': 8 userId; in mode '1':
 * 9 absoluteExpiresAt, 10 store key.
 */
export const SET = new Script(`${PUT}
return put(KEYS[1], head(KEYS[1]), KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
`);

/**
 * `SET` for a store that reports sessions that time out (RedisStore `reportExpired`; one server only):
 * the same compare-and-set, and in the same step the session's entry in the hash of those due: its
 * owner ('' when anonymous) when it can time out, none when it cannot (a record ended, a renewal's
 * pointer, a user context). The hash is named in ARGV: it is on the one server with every key.
 * KEYS as SET. ARGV: 1–7 as SET, then always 8 userId ('' when anonymous), 9 absoluteExpiresAt,
 * 10 store key, 11 the hash of sessions due, 12 '1' when the record can time out.
 */
export const SET_REPORTED = new Script(`${PUT}
local r = put(KEYS[1], head(KEYS[1]), KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
if type(r) == 'number' and r >= 0 then return r end
if ARGV[12] == '1' then redis.call('HSET', ARGV[11], ARGV[10], ARGV[8]) else redis.call('HDEL', ARGV[11], ARGV[10]) end
return r
`);

/**
 * Claims sessions that timed out from the hash of those due (RedisStore `reportExpired`; one server
 * only): an entry whose record is gone (Redis expired it) or past a deadline at `now` (the record is
 * then deleted) leaves the hash, and is returned, so that of several processes sweeping at once one
 * reports it. An entry whose record is live stays.
 * ARGV: 1 the hash, 2 now, 3 the session key prefix, 4..n store keys.
 * Returns, for each claimed session, its store key and its owner ('' when anonymous).
 */
export const CLAIM_EXPIRED = new Script(`${RECORD}
local now = tonumber(ARGV[2])
local out = {}
for i = 4, #ARGV do
  local m = ARGV[i]
  local u = redis.call('HGET', ARGV[1], m)
  if u then
    local s = ARGV[3] .. m
    local h = head(s)
    if not h or not live(h, now) then
      if h then redis.call('DEL', s) end
      redis.call('HDEL', ARGV[1], m)
      out[#out + 1] = m
      out[#out + 1] = u
    end
  end
end
return out
`);

/**
 * The Cluster half of a sweep, per session (RedisStore `reportExpired`): whether the record under
 * KEYS[1] is gone (Redis expired it) or past a deadline at ARGV[1] (it is then deleted). Returns 1
 * for either, 0 while it is live. CLAIM_DUE then takes those still listed out of their hash.
 */
export const REAP = new Script(`${RECORD}
local h = head(KEYS[1])
if not h then return 1 end
if live(h, tonumber(ARGV[1])) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

/**
 * The Cluster claim (RedisStore `reportExpired`): takes the store keys in ARGV, whose records REAP
 * found gone, out of the hash of sessions due KEYS[1], each once whichever process asks first.
 * Returns, for each one taken, its store key and its owner ('' when anonymous).
 */
export const CLAIM_DUE = new Script(`
local out = {}
for i = 1, #ARGV do
  local u = redis.call('HGET', KEYS[1], ARGV[i])
  if u then
    redis.call('HDEL', KEYS[1], ARGV[i])
    out[#out + 1] = ARGV[i]
    out[#out + 1] = u
  end
end
return out
`);

/**
 * A regeneration in one step (standalone only: both sessions and the indexes on one server). Ends the
 * old record by compare-and-set (it is deleted, and in mode '1' leaves its owner's index), then
 * writes the new one, which must not hold a live record.
 * KEYS: 1 old session, 2 new session, then the old owner's index when the old mode is '1', then the
 * new owner's index when the new mode is '1'.
 * ARGV: 1 now, 2 change channel ('' = none), 3 the old record's expectedVersion, 4 old mode, 5 old
 * change message, 6 old userId, 7 old store key, 8 the new encoded record, 9 its ms until the earlier
 * deadline, 10 new mode, 11 new change message, 12 new userId, 13 new absoluteExpiresAt, 14 new store key.
 * Returns -2 when the new key holds a live record (nothing written); the old record's conflict (an
 * integer ≥ 0, nothing written); else { old put's result, new put's result } (see put).
 */
export const REGENERATE = new Script(`${PUT}
local now = tonumber(ARGV[1])
local nh = head(KEYS[2])
if nh and live(nh, now) then return -2 end
local k = 3
local oldIdx = false
if ARGV[4] == '1' then oldIdx = KEYS[k] k = k + 1 end
local old = put(KEYS[1], head(KEYS[1]), oldIdx, tonumber(ARGV[3]), now, '', '0', ARGV[4], ARGV[2], ARGV[5], ARGV[6], '', ARGV[7])
if type(old) == 'number' and old >= 0 then return old end
local new = put(KEYS[2], nh, KEYS[k], 0, now, ARGV[8], ARGV[9], ARGV[10], ARGV[2], ARGV[11], ARGV[12], ARGV[13], ARGV[14])
return { old, new }
`);

/**
 * Adds one entry to a user index, on its own: the Cluster path, run before the session write so
 * the index is never missing a live session of its user.
 * KEYS[1] index. ARGV: 1 store key, 2 absoluteExpiresAt, 3 now.
 */
export const INDEX = new Script(`${INDEX_ADD}
indexAdd(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))
return 1
`);

/**
 * Moves the idle deadline of a live record (by the caller's clock) and its TTL; never creates.
 * The data is not rewritten: SETRANGE patches lastSeenAt and expiresAt in the header.
 * KEYS[1] session. ARGV: 1 now, 2 expiresAt (decimal digits, reused verbatim in the stamp), 3 header
 * bytes 32–63 (lastSeenAt then expiresAt), 4 store key, 5 change channel ('' = none), 6 the version the
 * record must still have ('' = any).
 * Returns the version found in the header when touched (at least 1; without ARGV[6] it may be newer
 * than the one the caller last read, and the stamp names it), 0 otherwise.
 */
export const TOUCH = new Script(`${RECORD}
local h = head(KEYS[1])
local now = tonumber(ARGV[1])
if not h or not live(h, now) then return 0 end
local v = tonumber(string.sub(h, 1, 16))
if ARGV[6] ~= '' and v ~= tonumber(ARGV[6]) then return 0 end
redis.call('SETRANGE', KEYS[1], 32, ARGV[3])
local e = tonumber(ARGV[2])
local a = tonumber(string.sub(h, 65, 80))
if a < e then e = a end
redis.call('PEXPIRE', KEYS[1], string.format('%d', e - now))
if ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[5], '=' .. string.format('%d', v) .. ':' .. ARGV[2] .. ' ' .. ARGV[4])
end
return v
`);

/**
 * Deletes a record. KEYS[1] session. ARGV: 1 store key, 2 change channel ('' = none).
 * Returns the owner it had (false when anonymous or absent), so the caller can tidy that index.
 */
export const DESTROY = new Script(`${RECORD}
local h = head(KEYS[1])
local u = false
if h then u = owner(KEYS[1], h) end
if redis.call('DEL', KEYS[1]) == 1 and ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], '!' .. ARGV[1]) end
return u
`);

/**
 * Deletes the listed sessions, whoever owns them (destroyAll, one batch of a SCAN; on a Cluster one
 * session per call). KEYS[1..n] sessions. ARGV: 1 now (with destroyAll's `marginMs`, a now that much
 * later: only the count reads it), 2 change channel ('' = none), 3..n+2 store keys.
 * Returns how many deleted sessions were live at now, then, for each deleted one, its store key and
 * its owner ('' when anonymous), so the caller can report the removal and tidy that index.
 */
export const DESTROY_EACH = new Script(`${RECORD}
local now = tonumber(ARGV[1])
local out = {0}
for i = 1, #KEYS do
  local h = head(KEYS[i])
  if h then
    local u = owner(KEYS[i], h)
    if live(h, now) and not pointer(KEYS[i], h) then out[1] = out[1] + 1 end
    redis.call('DEL', KEYS[i])
    if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], '!' .. ARGV[i + 2]) end
    out[#out + 1] = ARGV[i + 2]
    out[#out + 1] = u or ''
  end
end
return out
`);

/**
 * How many of the listed keys are live sessions at now, renewals' pointers left out (count, one batch
 * of a SCAN; on a Cluster one key per call). KEYS[1..n] sessions. ARGV: 1 now (with count's `marginMs`,
 * a now that much later).
 */
export const COUNT_LIVE = new Script(`${RECORD}
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #KEYS do
  local h = head(KEYS[i])
  if h and live(h, now) and not pointer(KEYS[i], h) then n = n + 1 end
end
return n
`);

/**
 * Removes a member from a user index unless its session is (again) owned by that user; atomic with
 * the SET script because both keys live on the one server (standalone only).
 * KEYS[1] index, KEYS[2] session. ARGV: 1 store key, 2 userId.
 */
export const UNINDEX = new Script(`${RECORD}
local h = head(KEYS[2])
local u = false
if h then u = owner(KEYS[2], h) end
if u ~= ARGV[2] then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1
`);

/**
 * Deletes every session in the user's index still owned by the user, but those excepted, and drops
 * their members from the index (standalone only: the index is read here, in the same atomic step as
 * the deletions, so a session that a concurrent regeneration moved to a new key, whose index entry the
 * REGENERATE script added, is deleted too; a list read before the script would miss it).
 * KEYS[1] index, KEYS[2] the session keys' prefix (the start of a key name, given as a key so that a
 * client's own key prefix applies to it as to the others), KEYS[3] with reportExpired the hash of
 * sessions due (each deleted session leaves it, so no sweep reports a logout as a timeout).
 * ARGV: 1 userId, 2 now (with destroyByUser's `marginMs`, a now that much later: only the count reads
 * it), 3 change channel, 4..n excepted store keys.
 * Returns how many of the deleted sessions were live at now, then every member taken out of the index.
 */
export const DESTROY_BY_USER = new Script(`${RECORD}
local now = tonumber(ARGV[2])
local keep = {}
for i = 4, #ARGV do keep[ARGV[i]] = true end
local out = {0}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not keep[member] then
    local s = KEYS[2] .. member
    local h = head(s)
    if h and owner(s, h) == ARGV[1] then
      redis.call('DEL', s)
      if live(h, now) then out[1] = out[1] + 1 end
      if KEYS[3] then redis.call('HDEL', KEYS[3], member) end
      if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], '!' .. member) end
    end
    redis.call('ZREM', KEYS[1], member)
    out[#out + 1] = member
  end
end
return out
`);

/**
 * Deletes one session if the user still owns it (the Cluster path of destroyByUser, one call per session).
 * KEYS[1] session. ARGV: 1 userId, 2 now (with destroyByUser's `marginMs`, a now that much later: only
 * the result reads it), 3 store key, 4 change channel.
 * Returns 1 when a live session was deleted, 0 otherwise.
 */
export const DESTROY_IF_OWNED = new Script(`${RECORD}
local h = head(KEYS[1])
if not h or owner(KEYS[1], h) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '!' .. ARGV[3]) end
if live(h, tonumber(ARGV[2])) then return 1 end
return 0
`);

/**
 * Counts one event against a sliding-window limit (src/core/rate-limit.ts) unless it is at the limit.
 * KEYS[1] this fixed window's count, KEYS[2] the previous window's (one hash slot: the keys share a
 * hash tag). ARGV: 1 limit, 2 the previous window's weight (0..1), 3 ms to keep this window's count
 * (until the next window ends, while it still weighs). Returns 1 when counted, 0 when refused.
 */
export const LIMIT_TAKE = new Script(`
local counts = redis.call('MGET', KEYS[1], KEYS[2])
local current = tonumber(counts[1]) or 0
local previous = tonumber(counts[2]) or 0
if previous * tonumber(ARGV[2]) + current >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`);
