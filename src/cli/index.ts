/**
 * The `tether` command line: `tether haproxy-config …` prints an haproxy.cfg for a set of nodes;
 * `tether sessions …` lists, counts and ends sessions in a store, for an operator (a compromised
 * account, a user who asks to be logged out everywhere); `tether users …` shows or clears a user's
 * context (a request for their data, or its erasure); `tether secret` makes a signing secret, or
 * checks TETHER_SECRET against what production accepts without printing it. `main(argv)` resolves to the exit code and
 * writes through the given streams, so tests call it in-process.
 * @module
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { haproxyConfig, HAPROXY_DEFAULTS, HAPROXY_MAX_CHECKS, HAPROXY_MAX_MS } from '../cluster/haproxy.js';
import { isTetherError } from '../core/errors.js';
import { checkUserId, handleOf, randomToken, userContextKey } from '../core/ids.js';
import { jsonCodec } from '../core/codec.js';
import { endListed, recordHandle, sessionsOf } from '../core/commit.js';
import { decodeUserContext } from '../core/user-context.js';
import type { SessionCodec } from '../core/codec.js';
import { encryptedCodec } from '../core/encrypted-codec.js';
import { secretProblem, TETHER_DEFAULTS } from '../core/options.js';
import type { SessionRecord, SessionStore } from '../core/store.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const USAGE = `Usage: tether <command> [options]

Commands:
  haproxy-config   Print an haproxy.cfg that balances Tether nodes with cookie persistence.
  sessions         List, count or end sessions in a store.
  users            Show or clear a user's context (saved cart, preferences, flows) in a store.
  secret           Print a new signing secret, or check TETHER_SECRET.

Exit status: 0 done; 1 refused (a secret, an unknown handle) or the store failed (STORE_UNAVAILABLE);
2 a usage error (arguments, the store URL).

tether haproxy-config --listen <host:port> --nodes <host:port,host:port,...> [options]
  --listen <host:port>       where HAProxy accepts clients (required)
  --nodes <list>             the nodes, comma-separated host:port (required; may be repeated)
  --stats <host:port>        also serve HAProxy's stats page there
  --check-inter <duration>   time between health checks, e.g. 2s or 500ms (default ${HAPROXY_DEFAULTS.checkInterMs / 1000}s)
  --check-fastinter <duration>  checks while a node changes state (default ${HAPROXY_DEFAULTS.checkFastInterMs}ms)
  --fall <n>                 failed checks before a node is down (default ${HAPROXY_DEFAULTS.fall})
  --rise <n>                 passed checks before a node is up again (default ${HAPROXY_DEFAULTS.rise})
  --cookie <name>            HAProxy's persistence cookie (default ${HAPROXY_DEFAULTS.cookie}); must differ from the
                             app's session cookie (sid, or __Host-sid when Secure)
  --health-path <path>       the nodes' health check path (default ${HAPROXY_DEFAULTS.healthPath})

Example:
  npx tether haproxy-config --listen 127.0.0.1:8080 --nodes 127.0.0.1:3001,127.0.0.1:3002,127.0.0.1:3003 > haproxy.cfg

tether sessions list <userId> [--store <url>] [--json] [--expiry-grace-ms <ms>]
tether sessions end <userId> [--handle=<handle>] [--store <url>] [--expiry-grace-ms <ms>]
tether sessions end --all [--store <url>] [--expiry-grace-ms <ms>]
tether sessions count [--store <url>] [--expiry-grace-ms <ms>]
  list                       the user's live sessions: handle, created, last seen, expires, signed in, remembered, user agent
                             (with env TETHER_DATA_KEY when the app encrypts session data, encryptedCodec)
  end                        ends every session of the user ("log out everywhere"); their user context stays.
                             Counted as the app's destroyUserSessions counts: a session stored under two IDs
                             (an ID renewal under way) once, one within expiryGraceMs of the store's deadline
                             (timed out for the app) not at all
  --handle=<handle>          with end: only that one of the user's sessions (as list shows it, or the app's
                             session.handle; with the =, since a handle may begin with -); a session
                             whose ID the app renewed since ends under its new ID; one within
                             expiryGraceMs of the store's deadline has timed out, and is refused as an
                             unknown handle is
  --all                      with end, instead of a user ID: ends every session of every user, anonymous ones
                             too (after a breach); user contexts stay. Counted as the app's
                             destroyAllSessions counts: not those within expiryGraceMs of the store's
                             deadline, though they are removed too
  count                      live sessions in the store, as newSessions.maxActive counts them (user contexts
                             are not counted, nor sessions within expiryGraceMs of the store's deadline)
  --store <url>              the store the app uses: sqlite:<file>, redis://… (redis+sentinel://…, redis+cluster://…),
                             postgres://… (default: env TETHER_STORE);
                             with the app's keyPrefix= (Redis) or tableName=/schema= (PostgreSQL) if it sets them
  --json                     one JSON array instead of a table
  --expiry-grace-ms <ms>     with list, count or end: the app's expiryGraceMs, if it sets one (default
                             60000): the store keeps a session that long past its timeout, which list, count,
                             end's count and end --handle leave out and list takes off each expires, as the
                             app's listUserSessions does

Example:
  TETHER_STORE=redis://127.0.0.1:6379 npx tether sessions end 5f0c…

tether users show <userId> [--store <url>] [--json]
tether users clear <userId> [--store <url>]
  show                       the user's context as JSON, when it was last written and when it expires
                             (with env TETHER_DATA_KEY when the app encrypts its data, encryptedCodec)
  clear                      deletes the user's context (their sessions stay: sessions end <userId> ends those)
  --store <url>              as for sessions (default: env TETHER_STORE)
  --json                     with show: one JSON object (userId, lastWrittenAt, expiresAt, context; context
                             null when there is none)

Example, a user's request for their data:
  TETHER_STORE=sqlite:data/sessions.db npx tether users show 5f0c… --json > 5f0c.json

tether secret [--check]
  (no option)                prints a new secret: 32 random bytes, base64url (43 characters)
  --check                    checks each secret of TETHER_SECRET (comma-separated, the first signs), and each
                             key of TETHER_DATA_KEY (encryptedCodec) when set, against what production
                             accepts; prints only their positions and lengths, never a secret; exits 1
                             when one is refused

Example, adding a new secret last during a rotation (docs/deploy.md):
  export TETHER_SECRET="$TETHER_SECRET,$(npx tether secret)" && npx tether secret --check
`;

class UsageError extends Error {}

/**
 * Grouping as under `renewal`, whether or not the app renews IDs: records of one session share its
 * handle and CSRF token, which no two sessions do.
 */
const RENEWED = Object.freeze({});

function duration(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)(ms|s)?$/.exec(value);
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${name} must be a duration like 2s or 500ms (got "${value}")`);
  // HAProxy refuses a longer time as a timer overflow, and with it the whole configuration.
  if (n > HAPROXY_MAX_MS) throw new UsageError(`${name} must be at most ${HAPROXY_MAX_MS}ms (about 24.8 days, the longest time HAProxy accepts; got "${value}")`);
  return n;
}

/**
 * When a stored session times out for the app: the store's deadline (idle or absolute, the earlier) less
 * the app's `expiryGraceMs`, for which the store keeps a session past it.
 */
function appDeadline(r: SessionRecord, grace: number): number {
  return Math.min(r.expiresAt, r.absoluteExpiresAt) - grace;
}

/** The app's `expiryGraceMs`, which `sessions list`, `count` and `end` take off the store's deadlines; the engine's default when not given. */
function graceMs(value: string | undefined): number {
  if (value === undefined) return TETHER_DEFAULTS.expiryGraceMs;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--expiry-grace-ms must be a whole number of milliseconds, as the app's expiryGraceMs (got "${value}")`);
  }
  return Number(value);
}

function count(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > HAPROXY_MAX_CHECKS) {
    throw new UsageError(`${name} must be a whole number from 1 to ${HAPROXY_MAX_CHECKS} (got "${value}")`);
  }
  return Number(value);
}

/**
 * Refuses an option given more than once: parseArgs keeps only the last value, so `--listen a --listen b`
 * would silently drop one of them.
 */
function refuseRepeats(tokens: ReadonlyArray<{ kind: string; name?: string }>, repeatable: readonly string[]): void {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || t.name === undefined || repeatable.includes(t.name)) continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given more than once`);
    seen.add(t.name);
  }
}

function haproxyCommand(args: string[], io: CliIo): number {
  const { values, positionals, tokens } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    tokens: true,
    options: {
      listen: { type: 'string' }, nodes: { type: 'string', multiple: true }, stats: { type: 'string' }, 'check-inter': { type: 'string' },
      'check-fastinter': { type: 'string' },
      fall: { type: 'string' }, rise: { type: 'string' }, cookie: { type: 'string' }, 'health-path': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  // --nodes may be repeated, each adding its nodes; every other option takes one value.
  refuseRepeats(tokens, ['nodes']);
  if (values.listen === undefined) throw new UsageError('--listen <host:port> is required');
  if (values.nodes === undefined) throw new UsageError('--nodes <host:port,...> is required');
  const nodes = values.nodes.flatMap((v) => v.split(',')).map((s) => s.trim());
  if (nodes.some((n) => n === '')) throw new UsageError('--nodes has an empty entry (comma-separated host:port, no trailing comma)');
  const text = haproxyConfig({
    listen: values.listen,
    nodes,
    stats: values.stats,
    checkInterMs: duration(values['check-inter'], '--check-inter'),
    checkFastInterMs: duration(values['check-fastinter'], '--check-fastinter'),
    fall: count(values.fall, '--fall'),
    rise: count(values.rise, '--rise'),
    cookie: values.cookie,
    healthPath: values['health-path'],
  });
  io.out(text);
  return 0;
}

async function sessionsCommand(args: string[], io: CliIo, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals, tokens } = parseArgs({
    args, strict: true, allowPositionals: true, tokens: true,
    options: { store: { type: 'string' }, json: { type: 'boolean' }, handle: { type: 'string' }, all: { type: 'boolean' },
      'expiry-grace-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  refuseRepeats(tokens, []);
  const [action, userId, extra] = positionals;
  if (action !== 'list' && action !== 'end' && action !== 'count') throw new UsageError(`sessions needs list, end or count (got ${action === undefined ? 'nothing' : `"${action}"`})`);
  if (action === 'count' ? userId !== undefined : extra !== undefined) throw new UsageError(`unexpected argument "${action === 'count' ? userId : extra}"`);
  const all = values.all === true;
  if (all && action !== 'end') throw new UsageError('--all goes with sessions end');
  if (all && userId !== undefined) throw new UsageError('sessions end --all ends everyone\'s sessions: give no user ID');
  if (all && values.handle !== undefined) throw new UsageError('--all and --handle do not go together');
  if (action !== 'count' && !all && (userId === undefined || userId === '')) throw new UsageError(`sessions ${action} needs a user ID${action === 'end' ? ' (or --all)' : ''}`);
  if (values.handle !== undefined && action !== 'end') throw new UsageError('--handle goes with sessions end');
  if (values.handle === '') throw new UsageError('--handle needs a session handle (sessions list shows them)');
  const grace = graceMs(values['expiry-grace-ms']);
  const { store, codec } = await appStore(values.store, env);
  try {
    if (action === 'count') {
      if (typeof store.count !== 'function') throw new UsageError(`the ${store.name} store does not count its sessions`);
      // As newSessions.maxActive counts: a session within the grace has timed out for the app.
      io.out(`${await store.count({ marginMs: grace })}\n`);
    } else if (all) {
      if (typeof store.destroyAll !== 'function') throw new UsageError(`the ${store.name} store cannot end every session`);
      // Twice: an app that renews IDs (renewal) may have moved a session, while the store was walked, to
      // a key the walk had passed or never listed, its old record removed. Counted as the app's
      // destroyAllSessions counts: a session within the grace had timed out, though it is removed too.
      const counting = { marginMs: grace };
      const ended = await store.destroyAll(counting) + await store.destroyAll(counting);
      io.out(`ended ${ended} session${ended === 1 ? '' : 's'} of every user\n`);
    } else if (action === 'end' && values.handle !== undefined) {
      // Only a session the user holds: a handle names a store key's hash, never another user's session.
      // The session's handle, as list shows it, or that of the ID it is stored under (an app's log). One
      // within the grace has timed out for the app (its destroyUserSession does not find it either).
      const grouping = { renewal: RENEWED, codec };
      const now = Date.now();
      const targets = (await store.listByUser(userId!)).filter((r) => (handleOf(r.key) === values.handle || recordHandle(r, codec) === values.handle)
        && appDeadline(r, grace) > now);
      if (targets.length === 0) {
        io.err(`tether sessions: ${userId} has no session ${values.handle}\n`);
        return 1;
      }
      // As the app's destroyUserSession: a session the app is renewing meanwhile ends under its new ID too.
      await endListed(targets, grouping, () => store.listByUser(userId!), async (r) => {
        await store.destroy(r.key);
        return true;
      });
      io.out(`ended session ${values.handle} of ${userId}\n`);
    } else if (action === 'end') {
      const ended = await endUser(store, userId!, grace, codec);
      io.out(`ended ${ended} session${ended === 1 ? '' : 's'} of ${userId}\n`);
    } else {
      // A session the app is renewing (or failed to) is stored under two IDs: listed once, as its latest record.
      // The engine's deadline is the store's less expiryGraceMs: a session within that margin has timed
      // out for the app (listUserSessions leaves it out) and is kept only for the store's sake.
      const now = Date.now();
      const deadline = (r: SessionRecord): number => appDeadline(r, grace);
      const live = (await store.listByUser(userId!)).filter((r) => deadline(r) > now);
      const latest = sessionsOf(live, { renewal: RENEWED, codec })
        .map((g) => g.reduce((a, b) => (b.lastSeenAt > a.lastSeenAt ? b : a)));
      const rows = latest.map((r) => ({
        handle: recordHandle(r, codec),
        createdAt: new Date(r.createdAt).toISOString(),
        lastSeenAt: new Date(r.lastSeenAt).toISOString(),
        expiresAt: new Date(deadline(r)).toISOString(),
        ...envelopeFacts(r.data, codec),
      })).sort((a, b) => b.lastSeenAt.localeCompare(a.lastSeenAt));
      if (values.json) io.out(`${inert(JSON.stringify(rows), true)}\n`);
      else if (rows.length === 0) io.out(`no live sessions for ${userId}\n`);
      else io.out(rows.map((r) => `${r.handle}  created ${r.createdAt}  last seen ${r.lastSeenAt}  expires ${r.expiresAt}${r.authenticatedAt ? `  signed in ${r.authenticatedAt}` : ''}${r.remembered ? '  remembered' : ''}${r.network ? `  from ${r.network}` : ''}  ${r.userAgent === null ? '-' : inert(r.userAgent)}`).join('\n') + '\n');
    }
    return 0;
  } finally {
    await store.close();
  }
}

/** Listings `sessions end <userId>` ends before it leaves what is still listed to one destroyByUser, as the engine does. */
const END_ROUNDS = 5;

/**
 * Ends every session of `userId` and returns how many were live, counted as the app's
 * destroyUserSessions counts them: by session, so that one an app renewing IDs has stored under two
 * (between its renewal's two writes) counts once, and without those timed out for the app that the store
 * keeps for `grace` (its expiryGraceMs). The records are listed and deleted one by one, and listed again
 * until a listing holds nothing more: a session renewed meanwhile is ended under its new ID too.
 */
async function endUser(store: SessionStore, userId: string, grace: number, codec: SessionCodec): Promise<number> {
  const deleted = new Set<string>();
  // The handles of the sessions ended: one renewed meanwhile is met again in a later round, under its new ID.
  const ended = new Set<string>();
  let live = 0;
  for (let round = 0; round < END_ROUNDS; round++) {
    const victims = (await store.listByUser(userId)).filter((r) => !deleted.has(r.key));
    if (victims.length === 0) return live;
    const now = Date.now();
    for (const group of sessionsOf(victims, { renewal: RENEWED, codec })) {
      const handles = group.map((r) => recordHandle(r, codec));
      const again = handles.some((h) => ended.has(h));
      for (const h of handles) ended.add(h);
      for (const r of group) {
        deleted.add(r.key);
        await store.destroy(r.key);
      }
      if (!again && group.some((r) => appDeadline(r, grace) > now)) live++;
    }
  }
  // Still new sessions at every listing: what is left goes at once, those within the grace not counted.
  return live + await store.destroyByUser(userId, { marginMs: grace });
}

/**
 * The store the app shares (`--store`, else TETHER_STORE), opened, and the codec its data is read with:
 * the app's encryptedCodec keys from TETHER_DATA_KEY when set, so that what is shown is what is inside.
 */
async function appStore(flag: string | undefined, env: NodeJS.ProcessEnv): Promise<{ store: SessionStore; codec: SessionCodec }> {
  // Loaded only here: haproxy-config needs no store driver.
  const { openTarget, parseStoreUrl } = await import('../stores/index.js');
  const url = flag ?? env.TETHER_STORE;
  if (url === undefined || url === '') throw new UsageError('no store: pass --store <url> or set TETHER_STORE');
  const target = parseStoreUrl(url);
  if (target.kind === 'memory') throw new UsageError('a memory store lives inside the app\'s process; name the store the app shares (sqlite:, redis://, postgres://)');
  // Opening a SQLite store creates its file: a mistyped path would be a new, empty store, and "ended 0
  // sessions" a false all-clear. The CLI only opens a file the app has made.
  if (target.kind === 'sqlite' && target.path !== ':memory:') {
    if (!existsSync(target.path)) throw new UsageError(`no SQLite store at ${target.path}: check the path (the CLI opens the app's store, it never creates one)`);
    // Another SQLite file (the app's own database beside the sessions') would be given the store's tables.
    const { holdsStore } = await import('../stores/sqlite/connection.js');
    if (holdsStore(target.path) === false) {
      throw new UsageError(`no SQLite store at ${target.path}: the file holds no Tether sessions table; check the path (the CLI opens the app's store, it never creates one)`);
    }
  }
  if (target.kind === 'postgres') {
    const { holdsStore } = await import('../stores/postgres/driver.js');
    const { POSTGRES_STORE_DEFAULTS } = await import('../stores/postgres/index.js');
    const table = target.options?.tableName ?? POSTGRES_STORE_DEFAULTS.tableName;
    if (await holdsStore(target.connectionString, table, target.options?.schema) === false) {
      throw new UsageError(`no PostgreSQL store in that database: it has no Tether table ${target.options?.schema ? `${target.options.schema}.` : ''}${table}; check the URL's database and its tableName= or schema= (the CLI opens the app's store, it never creates one)`);
    }
  }
  const dataKeys = listOf(env.TETHER_DATA_KEY);
  const codec = dataKeys.length > 0 ? encryptedCodec({ keys: dataKeys }) : jsonCodec;
  // The store itself, without the near-cache the URL may ask the app for: one command needs none.
  const store = await openTarget(target);
  if (target.kind === 'redis') {
    // A prefix no store writes under reads as an empty store: "0", "ended 0 sessions", a false all-clear.
    const { REDIS_STORE_DEFAULTS } = await import('../stores/redis/index.js');
    let holds: boolean;
    try {
      holds = await (store as import('../stores/redis/index.js').RedisStore).holdsStore();
    } catch (err) {
      await store.close();
      throw err;
    }
    if (!holds) {
      await store.close();
      const prefix = target.options?.keyPrefix ?? REDIS_STORE_DEFAULTS.keyPrefix;
      throw new UsageError(`no Redis store under the key prefix "${inert(prefix)}" in that database: no Tether key there; check the URL's keyPrefix= and its database number (the CLI opens the app's store, it never creates one)`);
    }
  }
  return { store, codec };
}

async function usersCommand(args: string[], io: CliIo, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals, tokens } = parseArgs({
    args, strict: true, allowPositionals: true, tokens: true,
    options: { store: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  refuseRepeats(tokens, []);
  const [action, userId, extra] = positionals;
  if (action !== 'show' && action !== 'clear') throw new UsageError(`users needs show or clear (got ${action === undefined ? 'nothing' : `"${action}"`})`);
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  if (userId === undefined || userId === '') throw new UsageError(`users ${action} needs a user ID`);
  if (values.json && action !== 'show') throw new UsageError('--json goes with users show');
  const key = userContextKey(checkUserId(userId));
  const { store, codec } = await appStore(values.store, env);
  try {
    const rec = await store.get(key);
    if (action === 'clear') {
      if (rec !== null) await store.destroy(key);
      io.out(rec === null ? `${userId} has no user context\n` : `cleared the user context of ${userId}\n`);
      return 0;
    }
    if (rec === null) {
      io.out(values.json ? `${JSON.stringify({ userId, context: null })}\n` : `${userId} has no user context\n`);
      return 0;
    }
    const context = readContext(rec.data, codec);
    if (context === null) {
      io.err(`tether users: the user context of ${userId} could not be read ${codec === jsonCodec
        ? '(if the app encrypts its data, set TETHER_DATA_KEY to its keys)' : 'with the keys of TETHER_DATA_KEY'}\n`);
      return 1;
    }
    const lastWrittenAt = new Date(rec.lastSeenAt).toISOString();
    const expiresAt = new Date(Math.min(rec.expiresAt, rec.absoluteExpiresAt)).toISOString();
    io.out(values.json
      ? `${inert(JSON.stringify({ userId, lastWrittenAt, expiresAt, context }), true)}\n`
      : `user context of ${userId}: last written ${lastWrittenAt}, expires ${expiresAt}\n${inert(JSON.stringify(context, null, 2), true)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** A stored user context read as the app reads it, or null when it is not one (encrypted under keys not given). */
function readContext(data: string, codec: SessionCodec): Record<string, unknown> | null {
  try {
    return decodeUserContext(data, codec).context;
  } catch {
    return null;
  }
}

/** C0 controls, DEL and C1 controls (U+0080–U+009F): whatever is not printable ASCII or from U+00A0 on. */
const CONTROLS = /[^ -~\u00a0-\uffff]/g;
/** What JSON.stringify leaves unescaped of those: DEL and the C1 controls. */
const JSON_CONTROLS = /[\u007f-\u009f]/g;

/**
 * `text` with its control characters written as `\uXXXX` escapes, for a terminal: what a session or a
 * user context holds comes from clients (a User-Agent is whatever the client sent, a context holds what
 * users typed), and a control character printed as it is drives the operator's terminal. An HTTP
 * parser refuses ESC in a header but lets C1 controls through (obs-text), and CSI (U+009B) acts as ESC [.
 * `json`: `text` is JSON.stringify's output, whose strings hold C1 controls as they are (and whose line
 * breaks, outside strings, stay); the escapes are JSON's own, so it still parses to the same values.
 */
function inert(text: string, json = false): string {
  return text.replace(json ? JSON_CONTROLS : CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A comma-separated variable's entries, trimmed, empty ones dropped (TETHER_SECRET, TETHER_DATA_KEY). */
function listOf(value: string | undefined): string[] {
  return (value ?? '').split(',').map((v) => v.trim()).filter((v) => v.length > 0);
}

function secretCommand(args: string[], io: CliIo, env: NodeJS.ProcessEnv): number {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  // A secret on the command line would stay in the shell's history and the process list.
  if (positionals.length > 0) throw new UsageError('secret takes no argument: --check reads TETHER_SECRET (and TETHER_DATA_KEY) from the environment');
  if (!values.check) {
    io.out(`${randomToken()}\n`);
    return 0;
  }
  const secrets = listOf(env.TETHER_SECRET);
  const dataKeys = listOf(env.TETHER_DATA_KEY);
  if (secrets.length === 0 && dataKeys.length === 0) throw new UsageError('--check reads TETHER_SECRET and TETHER_DATA_KEY, and neither is set');
  let refused = 0;
  const judge = (what: string, problem: string | null): void => {
    if (problem !== null) refused++;
    (problem === null ? io.out : io.err)(`${what}: ${problem ?? 'ok'}\n`);
  };
  secrets.forEach((secret, i) => {
    judge(`secret ${i + 1} of ${secrets.length}${i === 0 ? ' (signs)' : ' (verifies)'}, ${secret.length} characters`, secretProblem(secret, true));
  });
  // The keys of encryptedCodec (the shop's TETHER_DATA_KEY): the same rules, and none may be a signing secret.
  dataKeys.forEach((key, i) => {
    const problem = secretProblem(key, true) ?? (secrets.includes(key) ? 'the same as a signing secret of TETHER_SECRET: keep the two apart' : null);
    judge(`data key ${i + 1} of ${dataKeys.length}${i === 0 ? ' (encrypts)' : ' (decrypts)'}, ${key.length} characters`, problem);
  });
  return refused === 0 ? 0 : 1;
}

/**
 * The user agent a session began with, whether it is remembered, when its user last signed in or
 * confirmed the password there, and the network it was last seen from (`addressChange`), when its
 * data is in the default JSON codec.
 */
function envelopeFacts(data: string, codec: SessionCodec): { userAgent: string | null; remembered: boolean; authenticatedAt: string | null; network: string | null } {
  try {
    const env = codec.decode(data);
    return { userAgent: env.u ?? null, remembered: env.r === 1, authenticatedAt: env.a === undefined ? null : new Date(env.a).toISOString(), network: env.n ?? null };
  } catch {
    return { userAgent: null, remembered: false, authenticatedAt: null, network: null };
  }
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function main(
  argv: readonly string[],
  io: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      io.out(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === 'haproxy-config') return haproxyCommand(rest, io);
    if (command === 'sessions') return await sessionsCommand(rest, io, env);
    if (command === 'users') return await usersCommand(rest, io, env);
    if (command === 'secret') return secretCommand(rest, io, env);
    throw new UsageError(`unknown command "${command}"`);
  } catch (err) {
    if (isTetherError(err) && err.code === 'STORE_UNAVAILABLE') {
      // The command was right; the store failed it (an outage, a timeout): help would not help.
      io.err(`tether ${command ?? ''}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    const known = err instanceof UsageError || isTetherError(err) || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (!known) throw err;
    io.err(`tether ${command ?? ''}: ${(err as Error).message}\nRun "tether --help" for usage.\n`);
    return 2;
  }
}
