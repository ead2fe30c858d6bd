/**
 * One clock for every machine sharing a store (SECURITY.md F14): RedisStore's and PostgresStore's
 * default clock follows the server's time, and an engine given no clock follows its store's, so a
 * machine whose clock is five minutes off neither ends sessions early nor keeps them late. Real
 * redis-server and PostgreSQL; the skewed machines are played through `localClock`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../src/stores/redis/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { TieredStore } from '../../src/stores/tiered/index.js';
import { createTether } from '../../src/core/engine.js';
import type { Tether } from '../../src/core/engine.js';
import { ManualClock } from '../../src/testing/store-suite.js';
import { ServerClock } from '../../src/core/store.js';
import type { Clock, SessionStore } from '../../src/core/store.js';
import { redisAndPostgres } from '../helpers/backends.js';
import { trip, SECRET_A } from '../unit/support.js';

const SKEW_MS = 5 * 60_000;
const skewed = (ms: number): Clock => ({ now: () => Date.now() + ms });

interface ClockOptions {
  clock?: Clock;
  localClock?: Clock;
}

const servers = redisAndPostgres();

/** Each backend's store over shared data named `space`: every store opened with one `space` sees the same sessions. */
const backends: Array<{ name: string; open: (space: string, o: ClockOptions) => SessionStore & { clock: Clock } }> = [
  { name: 'RedisStore', open: (space, o) => new RedisStore({ url: servers.redis.url, keyPrefix: `${space}:`, ...o }) },
  { name: 'PostgresStore', open: (space, o) => new PostgresStore({ connectionString: servers.postgres.url, tableName: space, sweepIntervalMs: 0, ...o }) },
];

let spaces = 0;
for (const backend of backends) {
  describe(`${backend.name} clock`, () => {
    it('machine clock when five minutes off then the store clock agrees with the server after the first read, and an engine and a tier follow it', async (t) => {
      for (const skew of [SKEW_MS, -SKEW_MS]) {
        const store = backend.open(`clk${++spaces}`, { localClock: skewed(skew) });
        t.after(() => store.close());
        assert.ok(store.clock instanceof ServerClock);
        await store.get('nothing-here');
        // The server runs on this machine, so its time is this process's Date.now().
        assert.ok(Math.abs(store.clock.now() - Date.now()) < 1_000, `off by ${store.clock.now() - Date.now()} ms`);
        assert.ok(Math.abs((store.clock).offsetMs + skew) < 1_000);
        assert.equal(createTether({ secrets: [SECRET_A], store }).options.clock, store.clock, 'the engine follows the store');
        assert.equal(new TieredStore({ shared: store }).clock, store.clock, 'a tier over it follows it too');
      }
    });

    it('a clock given then it is used as is, not corrected', async (t) => {
      const clock = new ManualClock(1_000);
      const store = backend.open(`clk${++spaces}`, { clock });
      t.after(() => store.close());
      await store.get('nothing-here');
      assert.equal(store.clock, clock);
      assert.equal(store.clock.now(), 1_000);
    });

    it('sessions when one machine runs five minutes ahead and another five behind then none ends early, and an idle one still ends on time', async (t) => {
      const space = `clk${++spaces}`;
      // Long enough that a loaded machine's pauses between these requests stay well inside it.
      const idleTimeoutMs = 5_000;
      const node = (skew: number): Tether => {
        const tether = createTether({ secrets: [SECRET_A], store: backend.open(space, { localClock: skewed(skew) }), idleTimeoutMs, touchIntervalMs: 0 });
        t.after(() => tether.close());
        return tether;
      };
      const [right, ahead, behind] = [node(0), node(SKEW_MS), node(-SKEW_MS)];
      const created = await trip(right, undefined, (s) => s.set('n', 1));
      // Read by the machine ahead: by its own clock the session was last seen five minutes ago.
      const readAhead = await trip(ahead, created.cookie, (s) => assert.equal(s.get('n'), 1, 'still there on the machine ahead'), 'GET');
      assert.deepEqual(readAhead.setCookies, []);
      // Written by the machine behind: by its own clock that write happened five minutes ago.
      await trip(behind, created.cookie, (s) => s.set('n', 2));
      await trip(right, created.cookie, (s) => assert.equal(s.get('n'), 2, 'still there after the machine behind wrote'), 'GET');
      await trip(ahead, created.cookie, (s) => assert.equal(s.get('n'), 2), 'GET');
      assert.equal(ahead.stats().expired + behind.stats().expired + right.stats().expired, 0, 'no session ended early');

      // Left idle past the timeout (by the server's time), every machine sees it ended.
      await new Promise((r) => setTimeout(r, idleTimeoutMs + 300));
      const late = await trip(behind, created.cookie, (s) => assert.equal(s.isNew, true, 'ended on the machine behind too'), 'GET');
      assert.ok(late.setCookies.some((c) => c.startsWith('sid=;')), 'the ended session’s cookie is cleared');
    });

    it('sessions when machines five minutes apart keep one active then it ends at its absolute timeout on each of them, not before', async (t) => {
      const space = `abs${++spaces}`;
      const absoluteTimeoutMs = 6_000;
      const node = (skew: number): Tether => {
        const tether = createTether({ secrets: [SECRET_A], store: backend.open(space, { localClock: skewed(skew) }), idleTimeoutMs: 5_000, absoluteTimeoutMs, touchIntervalMs: 0 });
        t.after(() => tether.close());
        return tether;
      };
      const [right, ahead, behind] = [node(0), node(SKEW_MS), node(-SKEW_MS)];
      const started = Date.now();
      const created = await trip(right, undefined, (s) => s.set('n', 1));
      for (const machine of [ahead, behind]) {
        await new Promise((r) => setTimeout(r, 1_000));
        await trip(machine, created.cookie, (s) => assert.equal(s.isNew, false, 'active, within its lifetime'), 'GET');
      }
      assert.ok(Date.now() - started < absoluteTimeoutMs, 'the checks above ran inside the lifetime');
      await new Promise((r) => setTimeout(r, Math.max(0, started + absoluteTimeoutMs + 300 - Date.now())));
      for (const machine of [behind, ahead, right]) {
        await trip(machine, created.cookie, (s) => assert.equal(s.isNew, true, 'past its absolute timeout on every machine'), 'GET');
      }
    });
  });
}

describe('ServerClock', () => {
  it('sample when taken then now() is the server time carried forward, from the midpoint of the round trip', () => {
    let local = 10_000;
    const clock = new ServerClock({ now: () => local });
    assert.equal(clock.synced, false);
    assert.equal(clock.now(), 10_000, 'the local clock until the first sample');
    clock.sample(10_000, 50_010, 10_020); // sent at 10 000, answered at 10 020: the server said 50 010 at 10 010
    assert.equal(clock.synced, true);
    assert.equal(clock.offsetMs, 40_000);
    local = 11_000;
    assert.equal(clock.now(), 51_000);
    clock.sample(11_000, 1e99 * Number.NaN, 11_001);
    clock.sample(11_010, 90_000, 11_000); // answered before it was sent: not a measurement
    assert.equal(clock.offsetMs, 40_000, 'bad samples are ignored');
  });
});
