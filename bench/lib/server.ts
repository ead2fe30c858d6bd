/**
 * The server under test, one process per stack (forked by the harness with an IPC channel).
 *
 * Messages in: `{ type: 'init', stack, env }` builds the stack and listens on a free loopback port;
 * `{ type: 'cpu', seq }` answers with `process.cpuUsage()` and the number of requests the route handlers
 * ran, read before and after each measured pass; `{ type: 'close' }` closes the store and exits (which
 * also writes a `--cpu-prof` profile when the harness asked for one); `{ type: 'profile', action }` starts
 * and stops the V8 CPU profiler around one measured pass (the harness's --profile); `{ type: 'gc', seq }`
 * runs a full collection when node runs with --expose-gc, and says whether it did.
 * @module
 */
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { stackById } from './stacks.js';
import type { Counter, RunningApp, StackEnv } from '../stacks/context.js';

type Msg = { type: 'init'; stack: string; env: StackEnv } | { type: 'cpu'; seq: number } | { type: 'close' } | { type: 'gc'; seq: number }
  | { type: 'profile'; seq: number; action: 'start' } | { type: 'profile'; seq: number; action: 'stop'; file: string };

let inspectorSession: Session | null = null;

/** The V8 CPU profiler (what --cpu-prof runs) over exactly one measured pass, through node:inspector. */
function profile(msg: Extract<Msg, { type: 'profile' }>): void {
  const done = (err?: unknown): void => reply({ type: err ? 'error' : 'profile', seq: msg.seq, error: err ? (err instanceof Error ? err.message : JSON.stringify(err)) : undefined });
  if (msg.action === 'start') {
    inspectorSession ??= new Session();
    try { inspectorSession.connect(); } catch { /* already connected */ }
    inspectorSession.post('Profiler.enable', () => inspectorSession!.post('Profiler.start', (err) => done(err ?? undefined)));
    return;
  }
  inspectorSession!.post('Profiler.stop', (err, res) => {
    if (err) return done(err);
    writeFileSync(msg.file, JSON.stringify(res.profile));
    done();
  });
}

const counter: Counter = { handled: 0 };
let app: RunningApp | null = null;

function reply(msg: unknown): void {
  process.send?.(msg);
}

async function build(id: string, env: StackEnv): Promise<RunningApp> {
  const spec = stackById(id);
  if (spec.framework === 'node') return (await import('../stacks/node.js')).buildNode(spec, env, counter);
  if (spec.framework === 'express') return (await import('../stacks/express.js')).buildExpress(spec, env, counter);
  return (await import('../stacks/fastify.js')).buildFastify(spec, env, counter);
}

process.on('message', (msg: Msg) => {
  if (msg.type === 'init') {
    build(msg.stack, msg.env).then(
      (built) => {
        app = built;
        // Connections idle while other stacks run must still be open when the harness comes back.
        built.server.keepAliveTimeout = 30 * 60_000;
        built.server.listen(0, '127.0.0.1', () => {
          reply({ type: 'ready', port: (built.server.address() as AddressInfo).port });
        });
      },
      (err: unknown) => reply({ type: 'failed', error: err instanceof Error ? err.stack ?? err.message : String(err) }),
    );
  } else if (msg.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    reply({ type: 'cpu', seq: msg.seq, user, system, handled: counter.handled, heapUsed: process.memoryUsage().heapUsed });
  } else if (msg.type === 'gc') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    reply({ type: 'gc', seq: msg.seq, collected: gc !== undefined });
  } else if (msg.type === 'profile') {
    profile(msg);
  } else if (msg.type === 'close') {
    const done = (): never => process.exit(0);
    const timer = setTimeout(done, 3_000);
    timer.unref();
    if (!app) done();
    app!.server.closeAllConnections();
    app!.server.close();
    app!.close().then(done, done);
  }
});

// The harness went away: do not linger.
process.on('disconnect', () => process.exit(0));
