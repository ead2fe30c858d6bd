/**
 * The per-user registry on real stores: maxSessionsPerUser ends the oldest session at a login over the
 * limit, "log out everywhere" ends every other device, disabling an account ends them all, and
 * destroyAllSessions ends everyone's.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTether } from '../../../src/index.js';
import type { SessionStore } from '../../../src/index.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { SqliteStore } from '../../../src/stores/sqlite/index.js';
import { ManualClock } from '../../../src/testing/store-suite.js';
import { SECRET_A, trip } from '../support.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const stores: Array<[string, (clock: ManualClock) => Promise<SessionStore>]> = [
  ['memory', async (clock) => new MemoryStore({ clock, sweepIntervalMs: 0 })],
  ['sqlite', async (clock) => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-registry-'));
    dirs.push(dir);
    return new SqliteStore({ path: join(dir, 'sessions.db'), clock, sweepIntervalMs: 0 });
  }],
];

for (const [name, open] of stores) {
  describe(`user registry on ${name}`, () => {
    it('login when it exceeds maxSessionsPerUser then the oldest session ends and the newer ones live', async () => {
      const clock = new ManualClock();
      const tether = createTether({ secrets: [SECRET_A], store: await open(clock), clock, maxSessionsPerUser: 2 });
      const devices: string[] = [];
      for (let i = 0; i < 3; i++) {
        const t = await trip(tether, undefined, (s) => s.login('carol'));
        devices.push(t.cookie!);
        clock.advance(1_000);
      }
      const alive = async (cookie: string): Promise<boolean> => (await trip(tether, cookie, () => {}, 'GET')).session.userId === 'carol';
      assert.deepEqual([await alive(devices[0]!), await alive(devices[1]!), await alive(devices[2]!)], [false, true, true]);
      assert.equal((await tether.listUserSessions('carol')).length, 2);
      await tether.close();
    });

    it('logins racing each other past maxSessionsPerUser then they agree on the survivors: never fewer than the limit', async () => {
      for (const [max, racing] of [[1, 2], [2, 4], [1, 5]] as const) {
        const clock = new ManualClock();
        const tether = createTether({ secrets: [SECRET_A], store: await open(clock), clock, maxSessionsPerUser: max });
        const cookies = (await Promise.all(Array.from({ length: racing }, () => trip(tether, undefined, (s) => s.login('frank'))))).map((t) => t.cookie!);
        let alive = 0;
        for (const c of cookies) if ((await trip(tether, c, () => {}, 'GET')).session.userId === 'frank') alive++;
        assert.ok(alive >= max && alive <= max + 1, `limit ${max}, ${racing} racing logins: ${alive} alive`);
        assert.equal((await tether.listUserSessions('frank')).length, alive);
        await tether.close();
      }
    });

    it('setUser() when it binds an older session past maxSessionsPerUser then the other device, logged in before, ends', async () => {
      const clock = new ManualClock();
      const tether = createTether({ secrets: [SECRET_A], store: await open(clock), clock, maxSessionsPerUser: 1 });
      const old = await trip(tether, undefined, (s) => s.set('cart', 1));
      clock.advance(1_000);
      const other = await trip(tether, undefined, (s) => s.login('gina'));
      clock.advance(1_000);
      await trip(tether, old.cookie, (s) => s.setUser('gina'));
      assert.equal((await trip(tether, other.cookie, () => {}, 'GET')).session.userId, null);
      assert.equal((await trip(tether, old.cookie, () => {}, 'GET')).session.userId, 'gina');
      await tether.close();
    });

    it('maxSessionsPerUser when off (the default) then every login keeps its session', async () => {
      const clock = new ManualClock();
      const tether = createTether({ secrets: [SECRET_A], store: await open(clock), clock });
      for (let i = 0; i < 5; i++) await trip(tether, undefined, (s) => s.login('dave'));
      assert.equal((await tether.listUserSessions('dave')).length, 5);
      await tether.close();
    });

    it('log out everywhere else when asked from one device then only that device stays logged in', async () => {
      const clock = new ManualClock();
      const tether = createTether({ secrets: [SECRET_A], store: await open(clock), clock });
      const a = await trip(tether, undefined, (s) => s.login('erin'));
      const b = await trip(tether, undefined, (s) => s.login('erin'));
      const c = await trip(tether, undefined, (s) => s.login('erin'));
      const here = await trip(tether, a.cookie, () => {}, 'GET');
      assert.equal(await tether.destroyUserSessions('erin', { except: here.session }), 2);
      assert.equal((await trip(tether, a.cookie, () => {}, 'GET')).session.userId, 'erin');
      assert.equal((await trip(tether, b.cookie, () => {}, 'GET')).session.isNew, true);
      assert.equal((await trip(tether, c.cookie, () => {}, 'GET')).session.isNew, true);
      const listed = await tether.listUserSessions('erin', here.session);
      assert.deepEqual(listed.map((s) => s.current), [true]);
      await tether.close();
    });

    it('end every session when asked then every device of every user, and anonymous carts, start anew; user contexts stay', async () => {
      const clock = new ManualClock();
      const tether = createTether({ secrets: [SECRET_A], store: await open(clock), clock });
      const events: Array<Record<string, unknown>> = [];
      tether.events.on('destroyed', (m) => events.push({ ...m }));
      const devices = [await trip(tether, undefined, (s) => s.login('hana')), await trip(tether, undefined, (s) => s.login('hana')),
        await trip(tether, undefined, (s) => s.login('ivan')), await trip(tether, undefined, (s) => s.set('cart', 3))];
      await tether.users.update('hana', () => ({ saved: ['tea'] }));
      const destroyedBefore = tether.stats().destroyed;
      assert.equal(await tether.destroyAllSessions(), 4);
      for (const t of devices) {
        const after = (await trip(tether, t.cookie, () => {}, 'GET')).session;
        assert.equal(after.isNew, true);
        assert.equal(after.userId, null);
      }
      assert.deepEqual(await tether.listUserSessions('hana'), []);
      assert.deepEqual(await tether.users.get('hana'), { saved: ['tea'] }, 'a user\'s saved state is no session');
      assert.equal(tether.stats().destroyed - destroyedBefore, 4);
      assert.deepEqual(events, [{ event: 'destroyed', handle: '*', userId: null, reason: 'all', at: clock.now() }]);
      const again = await trip(tether, undefined, (s) => s.login('hana'));
      assert.equal((await trip(tether, again.cookie, () => {}, 'GET')).session.userId, 'hana', 'logins go on as before');
      assert.equal(await tether.destroyAllSessions(), 1);
      await tether.close();
    });

    it('account disablement when every session is destroyed then no device of the user is logged in, others untouched', async () => {
      const clock = new ManualClock();
      const tether = createTether({ secrets: [SECRET_A], store: await open(clock), clock });
      const mine = [await trip(tether, undefined, (s) => s.login('frank')), await trip(tether, undefined, (s) => s.login('frank'))];
      const other = await trip(tether, undefined, (s) => s.login('grace'));
      assert.equal(await tether.destroyUserSessions('frank'), 2);
      for (const t of mine) assert.equal((await trip(tether, t.cookie, () => {}, 'GET')).session.userId, null);
      assert.equal((await trip(tether, other.cookie, () => {}, 'GET')).session.userId, 'grace');
      await tether.close();
    });
  });
}
