/**
 * Sockets learn of an end in another process through the store's change feed: two engines (two
 * processes' worth) on one real backend each, a socket opened on one with no check timer, the session
 * ended on the other. Without the feed nothing would tell the socket until its next read. Then two
 * processes whose clocks are a minute apart, and a RedisStore subscriber cut off while the end is
 * published (the resync after it reconnects).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tether } from '../../src/core/engine.js';
import type { SocketEndReason, SocketSession } from '../../src/core/socket.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { SECRET_A, sleep, trip, view } from '../unit/support.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import { redisCommand } from '../helpers/redis.js';
import { realBackends } from '../helpers/backends.js';
import type { SharedBackend } from '../helpers/backends.js';

type Data = { n: number };
const HEADERS = { host: 'app.test', origin: 'http://app.test', 'user-agent': 'UA' };

const real = realBackends('feed');
let prefixes = 0;

const backends: SharedBackend[] = [
  { name: 'MemoryStore (two engines in one process)', pair: () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    return { a: store, b: store };
  } },
  ...real.list,
];

/** Waits (bounded) until `seen` holds something. */
async function until(seen: unknown[], timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (seen.length === 0 && Date.now() < deadline) await sleep(10);
}

function ends(socket: SocketSession<Data>): SocketEndReason[] {
  const seen: SocketEndReason[] = [];
  socket.onEnd((reason) => void seen.push(reason));
  return seen;
}

for (const backend of backends) {
  describe(`sockets and the change feed: ${backend.name}`, () => {
    let a: Tether<Data>;
    let b: Tether<Data>;
    before(async () => {
      const { a: sa, b: sb } = backend.pair();
      a = new Tether<Data>({ secrets: [SECRET_A], store: sa });
      b = new Tether<Data>({ secrets: [SECRET_A], store: sb });
    });
    after(async () => {
      await a.close();
      if (b.store !== a.store) await b.close();
    });

    const signedIn = async (user: string): Promise<string> =>
      (await trip(a, undefined, (s) => { s.set('n', 1); s.login(user); }, 'POST', HEADERS)).cookie!;
    const open = (cookie: string, changeFeed?: boolean) =>
      a.openSocket(view('GET', { ...HEADERS, cookie }), { checkIntervalMs: 0, ...(changeFeed === undefined ? {} : { changeFeed }) });

    it('a logout in the other process ends the socket without a read of its own; one opened with changeFeed: false learns it only when it reads', async () => {
      const cookie = await signedIn('ada');
      const fed = await open(cookie);
      const unfed = await open(cookie, false);
      const [ef, eu] = [ends(fed), ends(unfed)];
      await trip(b, cookie, (s) => s.destroy(), 'POST', HEADERS);
      await until(ef);
      assert.deepEqual(ef, ['gone']);
      assert.equal(a.stats().sockets, 1, 'the fed socket is no longer watched');
      await sleep(150);
      assert.deepEqual(eu, [], 'nothing read the session for the socket without the feed');
      assert.equal(await unfed.refresh(), false);
      assert.deepEqual(eu, ['gone']);
      assert.equal(a.stats().sockets, 0);
    });

    it('a login in the other process (a new ID) and "log out everywhere" there end the sockets; a change of the data does not, and is not read', async () => {
      const [c1, c2, c3] = [await signedIn('bo'), await signedIn('bo'), await signedIn('cy')];
      const [s1, s2, s3] = [await open(c1), await open(c2), await open(c3)];
      const [e1, e2, e3] = [ends(s1), ends(s2), ends(s3)];

      await trip(b, c3, (s) => s.set('n', 2), 'POST', HEADERS);
      await sleep(200);
      assert.deepEqual(e3, [], 'a change ends nothing');
      assert.equal(s3.get('n'), 1, 'and the socket did not read it: it reads at touch() or refresh()');
      assert.equal(await s3.refresh(), true);
      assert.equal(s3.get('n'), 2);

      await trip(b, c1, (s) => s.login('bo'), 'POST', HEADERS);
      await until(e1);
      assert.deepEqual(e1, ['gone'], 'the old ID is over; the browser holds the new one');

      assert.equal(await b.destroyUserSessions('bo'), 2);
      await until(e2);
      assert.deepEqual(e2, ['gone']);
      assert.deepEqual(e3, [], "another user's socket");
      s3.close();
      assert.equal(a.stats().sockets, 0);
    });
  });
}

describe('sockets and the change feed: clocks apart', () => {
  it('a login in a process whose clock runs a minute ahead still ends the socket: the ended state\'s deadline is before the one the socket read', async () => {
    const file = await tempSqliteFile();
    const ahead = { now: () => Date.now() + 60_000 };
    const store = new SqliteStore({ path: file.path, sweepIntervalMs: 0, changePollMs: 20, clock: ahead });
    const here = new Tether<Data>({ secrets: [SECRET_A], store });
    const there = new Tether<Data>({ secrets: [SECRET_A], store, clock: ahead });
    try {
      const cookie = (await trip(here, undefined, (s) => { s.set('n', 1); s.login('di'); }, 'POST', HEADERS)).cookie!;
      const socket = await here.openSocket(view('GET', { ...HEADERS, cookie }), { checkIntervalMs: 0 });
      const seen = ends(socket);
      await trip(there, cookie, (s) => s.set('n', 2), 'POST', HEADERS);
      await sleep(100);
      assert.deepEqual(seen, [], 'a write from the process ahead ends nothing');
      await trip(there, cookie, (s) => s.login('di'), 'POST', HEADERS);
      await until(seen);
      assert.deepEqual(seen, ['gone'], 'the old ID ended at "now − 1" there: in this process\'s future');
    } finally {
      await here.close();
      await file.remove();
    }
  });
});

describe('sockets and the change feed: a feed that reconnects', () => {
  it('RedisStore: a logout published while the subscriber was cut off is lost; the resync after it reconnects makes the socket read, and it ends', async () => {
    const keyPrefix = `feedcut${++prefixes}:`;
    const here = new Tether<Data>({ secrets: [SECRET_A], store: new RedisStore({ url: real.redis.url, keyPrefix }) });
    const there = new Tether<Data>({ secrets: [SECRET_A], store: new RedisStore({ url: real.redis.url, keyPrefix }) });
    try {
      const cookie = (await trip(here, undefined, (s) => { s.set('n', 1); s.login('ed'); }, 'POST', HEADERS)).cookie!;
      const socket = await here.openSocket(view('GET', { ...HEADERS, cookie }), { checkIntervalMs: 0 });
      const seen = ends(socket);
      const store = here.store as RedisStore;
      for (let i = 0; i < 200 && store.feedState !== 'listening'; i++) await sleep(10);
      assert.equal(store.feedState, 'listening');
      // Cut the subscriber off, and log out at once, before it is back: the change notice reaches nobody.
      await redisCommand(real.redis.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      await trip(there, cookie, (s) => s.destroy(), 'POST', HEADERS);
      await until(seen, 10_000);
      assert.deepEqual(seen, ['gone']);
    } finally {
      await here.close();
      await there.close();
    }
  });
});
