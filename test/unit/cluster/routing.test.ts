/** Unit tests of the primary's routing: reading the session cookie from a raw head, and the rendezvous hash. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { Router, routeCookieName, routingFromHead, sessionIdFromHead } from '../../../src/cluster/routing.js';

const head = (...lines: string[]): Buffer => Buffer.from(`GET / HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`, 'latin1');

describe('sessionIdFromHead', () => {
  it('sessionIdFromHead when the cookie is present then it returns the part before the signature', () => {
    assert.equal(sessionIdFromHead(head('Host: a', 'Cookie: x=1; sid=abc.SIG; y=2'), 'sid'), 'abc');
  });
  it('sessionIdFromHead when the header name has another case then it still finds it', () => {
    assert.equal(sessionIdFromHead(head('cOOkie: sid=id1.s'), 'sid'), 'id1');
  });
  it('sessionIdFromHead when the name appears twice then the first wins, like the engine', () => {
    assert.equal(sessionIdFromHead(head('Cookie: sid=first.s', 'Cookie: sid=second.s'), 'sid'), 'first');
    assert.equal(sessionIdFromHead(head('Cookie: sid=first.s; sid=second.s'), 'sid'), 'first');
  });
  it('sessionIdFromHead when only similar names are present then it returns null', () => {
    assert.equal(sessionIdFromHead(head('Cookie: SID=a.b; xsid=c.d; sid2=e.f'), 'sid'), null);
    assert.equal(sessionIdFromHead(head('X-Cookie: sid=a.b'), 'sid'), null);
    assert.equal(sessionIdFromHead(head('Cookie: sid='), 'sid'), null);
  });
  it('sessionIdFromHead when the value has no dot then the whole value is the ID', () => {
    assert.equal(sessionIdFromHead(head('Cookie: sid=nodot'), 'sid'), 'nodot');
  });
  it('sessionIdFromHead when the Cookie line is cut off then it is ignored', () => {
    assert.equal(sessionIdFromHead(Buffer.from('GET / HTTP/1.1\r\nCookie: sid=abc.d', 'latin1'), 'sid'), null);
  });
  it('sessionIdFromHead when the body holds a Cookie line then it is ignored', () => {
    const b = Buffer.from('POST / HTTP/1.1\r\nHost: a\r\n\r\nCookie: sid=body.x\r\n', 'latin1');
    assert.equal(sessionIdFromHead(b, 'sid'), null);
  });
  it('sessionIdFromHead when the value is enormous then only a bounded prefix is used', () => {
    const id = sessionIdFromHead(head(`Cookie: sid=${'a'.repeat(5000)}`), 'sid');
    assert.equal(id?.length, 256);
  });
});

describe('routingFromHead', () => {
  it('routingFromHead when both cookies are present then it returns the session\'s ID part and the slot the routing cookie names', () => {
    assert.deepEqual(routingFromHead(head('Cookie: sid=abc.SIG; sid-w=2'), 'sid'), { id: 'abc', slot: 2 });
    assert.deepEqual(routingFromHead(head('Cookie: sid-w=3', 'Cookie: x=1; sid=def.S'), 'sid'), { id: 'def', slot: 3 });
    assert.equal(routeCookieName('__Host-sid'), '__Host-sid-w');
    assert.deepEqual(routingFromHead(head('Cookie: __Host-sid=ghi.S; __Host-sid-w=1'), '__Host-sid'), { id: 'ghi', slot: 1 });
  });
  it('routingFromHead when the routing cookie is not a slot number then it names no slot', () => {
    for (const v of ['0', '-1', '01', '1.5', 'w1', '', '12345', ' 2x']) {
      assert.deepEqual(routingFromHead(head(`Cookie: sid=abc.S; sid-w=${v}`), 'sid'), { id: 'abc', slot: null }, JSON.stringify(v));
    }
    assert.deepEqual(routingFromHead(head('Cookie: sid-w=2'), 'sid'), { id: null, slot: 2 });
    assert.deepEqual(routingFromHead(head('Host: a'), 'sid'), { id: null, slot: null });
  });
  it('routingFromHead when a name appears twice then the first wins, like the engine', () => {
    assert.deepEqual(routingFromHead(head('Cookie: sid-w=1; sid=a.S; sid-w=2; sid=b.S'), 'sid'), { id: 'a', slot: 1 });
  });
});

describe('Router', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `session-${i}`);

  it('Router when the same ID is picked repeatedly then the slot is the same', () => {
    const r = new Router();
    for (const id of ids.slice(0, 50)) assert.equal(r.pick(id, [0, 1, 2]), new Router().pick(id, [0, 1, 2]));
  });
  it('Router when many sessions are hashed then every slot gets a fair share', () => {
    const r = new Router();
    const counts = [0, 0, 0, 0];
    for (const id of ids) counts[r.pick(id, [0, 1, 2, 3])!]!++;
    for (const c of counts) assert.ok(c > 350 && c < 650, `counts ${counts.join(',')}`);
  });
  it('Router when a slot is not ready then only its sessions move, spread over the others', () => {
    const r = new Router();
    const moved = [0, 0, 0];
    for (const id of ids) {
      const all = r.pick(id, [0, 1, 2, 3])!;
      const without = r.pick(id, [0, 1, 2])!;
      if (all !== 3) assert.equal(without, all, 'sessions of live slots stay put');
      else moved[without]!++;
    }
    for (const m of moved) assert.ok(m > 80, `moved ${moved.join(',')}`);
  });
  it('Router when no ID is given then slots take turns', () => {
    const r = new Router();
    const picks = Array.from({ length: 6 }, () => r.pick(null, [0, 1, 2]));
    assert.deepEqual([...picks].sort(), [0, 0, 1, 1, 2, 2]);
  });
  it('Router when no slot is ready then it returns undefined', () => {
    assert.equal(new Router().pick('x', []), undefined);
    assert.equal(new Router().pick(null, []), undefined);
  });
  it('Router when keyed then the mapping differs from the unkeyed one', () => {
    const plain = new Router();
    const keyed = new Router('a-routing-key');
    const differ = ids.slice(0, 200).filter((id) => plain.pick(id, [0, 1]) !== keyed.pick(id, [0, 1])).length;
    assert.ok(differ > 50, `only ${differ} of 200 differ`);
  });

  it('Router seed when an ID is hashed then it is the first four bytes of its SHA-256, or of its HMAC when keyed, big-endian and unsigned', () => {
    const plain = new Router();
    const keyed = new Router('a-routing-key');
    let high = 0;
    for (const id of ids.slice(0, 200)) {
      const want = createHash('sha256').update(id).digest().readUInt32BE(0);
      assert.equal(plain.seed(id), want);
      assert.equal(keyed.seed(id), createHmac('sha256', 'a-routing-key').update(id).digest().readUInt32BE(0));
      if (want >= 0x80000000) high++;
    }
    assert.ok(high > 50, 'seeds with the top bit set are covered');
  });
});
