/**
 * Connections handed to a worker that dies before it acknowledges them: Node keeps them open in the
 * sender; closeStrandedHandles closes them, so their clients see a closed connection at once.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { closeStrandedHandles } from '../../src/cluster/stranded.js';

/** A child whose event loop never turns, so it never reads its IPC channel or acknowledges a handle. */
function busyChild(): ChildProcess {
  return fork('-e', ['const until = Date.now() + 60_000; while (Date.now() < until);'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
}

/** Resolves true when the client's connection closes within `ms`, false when it is still open then. */
function closesWithin(client: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (client.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('connections stranded by a dead worker', () => {
  const children: ChildProcess[] = [];
  const clients: Socket[] = [];
  const server = net.createServer({ pauseOnConnect: true });
  const accepted: Socket[] = [];
  server.on('connection', (s) => accepted.push(s));

  after(async () => {
    for (const c of clients) c.destroy();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    server.close();
  });

  async function connect(): Promise<{ client: Socket; socket: Socket }> {
    const before = accepted.length;
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.on('error', () => {});
    clients.push(client);
    await once(client, 'connect');
    while (accepted.length === before) await new Promise((r) => setImmediate(r));
    return { client, socket: accepted.at(-1)! };
  }

  it('handed-off sockets when the worker dies before acknowledging them then stay open until closed here, and close at once after', async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const child = busyChild();
    children.push(child);
    await once(child, 'spawn');
    const first = await connect();
    const second = await connect();
    child.send({ n: 1 }, first.socket);
    child.send({ n: 2 }, second.socket); // queued behind the first, which awaits its acknowledgement
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(await closesWithin(first.client, 300), false, 'Node leaves the unacknowledged connection open');
    assert.equal(closeStrandedHandles(child), 2);
    assert.equal(await closesWithin(first.client, 2_000), true, 'the sent connection closes');
    assert.equal(await closesWithin(second.client, 2_000), true, 'the queued connection closes');
    assert.equal(closeStrandedHandles(child), 0, 'nothing is closed twice');
  });
});
