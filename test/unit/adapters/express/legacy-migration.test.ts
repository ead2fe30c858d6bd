/** Adoptions: requests of one process presenting the same express-session session share one adoption. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Adoptions, Claim } from '../../../../src/adapters/express/legacy-migration.js';

describe('Adoptions', () => {
  it('adoptions when a second request presents a claimed session then it waits and gets what the first adopted', async () => {
    const adoptions = new Adoptions();
    const first = await adoptions.claim('sid-1', 1_000);
    assert.ok(first instanceof Claim);
    const other = await adoptions.claim('sid-2', 1_000);
    assert.ok(other instanceof Claim, 'another old session is claimed apart');
    let answered = false;
    const second = adoptions.claim('sid-1', 1_000).then((v) => {
      answered = true;
      return v;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, false, 'waits while the first request adopts');
    first.adopted({ id: 'new-id', name: 'connect.sid', path: '/', domain: undefined });
    assert.deepEqual(await second, { id: 'new-id', name: 'connect.sid', path: '/', domain: undefined });
    assert.deepEqual(await adoptions.claim('sid-1', 1_000), { id: 'new-id', name: 'connect.sid', path: '/', domain: undefined }, 'until released, later ones join at once');
    first.release();
    other.release();
    assert.equal(adoptions.size, 0, 'nothing kept once the requests are done');
  });

  it('adoptions when the first request adopts nothing or ends the session then the next waiter claims it itself', async () => {
    const adoptions = new Adoptions();
    const first = (await adoptions.claim('sid-1', 1_000)) as Claim;
    const second = adoptions.claim('sid-1', 1_000);
    const third = adoptions.claim('sid-1', 1_000);
    first.end();
    first.adopted({ id: 'after-logout', name: 'connect.sid', path: '/', domain: undefined });
    first.release();
    const next = await second;
    assert.ok(next instanceof Claim, 'a logout’s new session is never handed to another holder of the old cookie');
    let answered = false;
    void third.then(() => (answered = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, false, 'the third waits for the second');
    next.release();
    const last = await third;
    assert.ok(last instanceof Claim);
    last.release();
    assert.equal(adoptions.size, 0);
  });

  it('adoptions when the first request holds its claim too long then waiters fail with SESSION_BUSY and nothing leaks', async () => {
    const adoptions = new Adoptions();
    const first = (await adoptions.claim('sid-1', 1_000)) as Claim;
    await assert.rejects(adoptions.claim('sid-1', 20), { code: 'SESSION_BUSY', message: /20 ms \(option gateTimeoutMs\)/ });
    first.release();
    assert.equal(adoptions.size, 0);
  });
});
