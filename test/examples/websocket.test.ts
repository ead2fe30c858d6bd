/**
 * examples/websocket.ts (node:http and `ws`), examples/fastify-websocket.ts (Fastify and
 * @fastify/websocket) and examples/socketio.ts (socket.io), docs/websocket.md's examples, equal to its
 * blocks, each started as a user would start it and driven with a real client over loopback: only a
 * signed-in session from the app's own origin gets a connection, its messages are stored in the
 * session, and a logout ends the connection.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startExample } from '../helpers/example.js';
import { connect } from '../helpers/ws.js';
import { io as ioClient } from 'socket.io-client';
import type { Socket } from 'socket.io-client';

const EXAMPLES = ['examples/websocket.ts', 'examples/fastify-websocket.ts', 'examples/socketio.ts'];
/** The examples on plain WebSockets, driven alike below. */
const WS_EXAMPLES = EXAMPLES.slice(0, 2);

/**
 * Signs in as ada over the example's HTTP routes, as its page would: the login is refused without the
 * CSRF token, then sent with it. Returns the cookie before the login, the one after, and the token.
 */
async function signIn(base: string): Promise<{ cookie0: string; cookie: string; token: string }> {
  const origin = base;
  const login = await fetch(`${base}/login`, { method: 'POST', headers: { origin, 'content-type': 'application/json', 'x-csrf-token': 'x' }, body: '{"user":"ada"}' });
  assert.equal(login.status, 403, 'the login itself needs the token');
  const first = await fetch(`${base}/`);
  const cookie0 = first.headers.get('set-cookie')!.split(';')[0]!;
  const { csrfToken } = (await first.json()) as { csrfToken: string };
  const signed = await fetch(`${base}/login`, { method: 'POST', headers: { origin, cookie: cookie0, 'content-type': 'application/json', 'x-csrf-token': csrfToken }, body: '{"user":"ada"}' });
  assert.equal(signed.status, 200);
  const cookie = signed.headers.get('set-cookie')!.split(';')[0]!;
  return { cookie0, cookie, token: ((await signed.json()) as { csrfToken: string }).csrfToken };
}

describe('examples of sessions on WebSockets', () => {
  it('websocket.md when read then shows each example, equal to its file', () => {
    const blocks = [...readFileSync('docs/websocket.md', 'utf8').matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)];
    assert.deepEqual(blocks.map((m) => m[1]), EXAMPLES);
    for (const [i, file] of EXAMPLES.entries()) assert.equal(blocks[i]![2], readFileSync(file, 'utf8'), file);
  });

  for (const file of WS_EXAMPLES) it(`${file} when started then upgrades only a signed-in session from its own origin, stores its messages and closes the socket at logout`, async (t) => {
    const base = await startExample(t, file, '/');
    const live = base.replace('http:', 'ws:') + '/live';
    const origin = base;

    const { cookie0, cookie, token } = await signIn(base);

    // Refused handshakes: another origin, no session, the pre-login cookie, another path.
    await assert.rejects(connect(live, { cookie, origin: 'http://evil.test' }), { status: 403, body: { error: { code: 'ORIGIN_MISMATCH', message: 'the request comes from another origin' } } });
    await assert.rejects(connect(live, { origin }), { status: 401, body: { error: { code: 'UNAUTHORIZED', message: 'Unauthorized' } } });
    await assert.rejects(connect(live, { cookie: cookie0, origin }), { status: 401 }, 'the cookie the login replaced names no session');
    await assert.rejects(connect(`${base.replace('http:', 'ws:')}/other`, { cookie, origin }), { status: 404 });

    // Two sockets of the session: each message is stored in the session, whichever socket sent it.
    const a = await connect(live, { cookie, origin });
    const b = await connect(live, { cookie, origin });
    await a.received(1);
    assert.deepEqual(a.messages[0], { type: 'hello', user: 'ada', messages: 0 });
    a.ws.send('one');
    await a.received(2);
    b.ws.send('two');
    await b.received(2);
    assert.deepEqual(b.messages[1], { type: 'count', messages: 2 });

    // A logout over HTTP closes both.
    const out = await fetch(`${base}/logout`, { method: 'POST', headers: { origin, cookie, 'content-type': 'application/json', 'x-csrf-token': token }, body: '{}' });
    assert.equal(out.status, 200);
    assert.deepEqual(await a.closed, { code: 4001, reason: 'session destroyed' });
    assert.deepEqual(await b.closed, { code: 4001, reason: 'session destroyed' });
    await assert.rejects(connect(live, { cookie, origin }), { status: 401 });
  });

  it('examples/socketio.ts when started then connects only a signed-in session from its own origin, on either transport, stores its messages and disconnects at logout', async (t) => {
    const base = await startExample(t, 'examples/socketio.ts', '/');
    const origin = base;
    const { cookie0, cookie, token } = await signIn(base);

    const opened: Socket[] = [];
    t.after(() => { for (const s of opened) s.close(); });
    /** Connects; resolves with the hello, or rejects with the connect_error (a refusal's code in its `data`). */
    const open = (headers: Record<string, string>, transports = ['polling', 'websocket']) => new Promise<{ socket: Socket; hello: unknown }>((resolve, reject) => {
      const socket = ioClient(base, { extraHeaders: headers, transports, reconnection: false });
      opened.push(socket);
      socket.once('hello', (hello: unknown) => resolve({ socket, hello }));
      socket.once('connect_error', (err: Error) => reject(err));
    });
    await assert.rejects(open({ cookie, origin: 'http://evil.test' }), { data: { code: 'ORIGIN_MISMATCH' } });
    await assert.rejects(open({ origin }), { data: { code: 'UNAUTHORIZED' } });
    await assert.rejects(open({ cookie: cookie0, origin }), { data: { code: 'UNAUTHORIZED' } }, 'the cookie the login replaced names no session');

    const a = await open({ cookie, origin });
    const b = await open({ cookie, origin }, ['websocket']);
    assert.deepEqual(a.hello, { user: 'ada', messages: 0 });
    assert.deepEqual(await a.socket.timeout(5_000).emitWithAck('message', 'one'), { messages: 1 });
    assert.deepEqual(await b.socket.timeout(5_000).emitWithAck('message', 'two'), { messages: 2 });

    const ended = [a, b].map(({ socket }) => new Promise((resolve) => {
      let reason: unknown;
      socket.once('ended', (r: unknown) => (reason = r));
      socket.once('disconnect', (why: string) => resolve([reason, why]));
    }));
    const out = await fetch(`${base}/logout`, { method: 'POST', headers: { origin, cookie, 'content-type': 'application/json', 'x-csrf-token': token }, body: '{}' });
    assert.equal(out.status, 200);
    assert.deepEqual(await Promise.all(ended), [['destroyed', 'io server disconnect'], ['destroyed', 'io server disconnect']]);
    await assert.rejects(open({ cookie, origin }), { data: { code: 'UNAUTHORIZED' } });
  });
});
