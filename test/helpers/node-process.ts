/**
 * Starts a Tether app (a cluster primary, a shop node, a fixture) as a real child process on 127.0.0.1,
 * waits until it answers its health path, and stops it by PID: SIGTERM with a bound, or SIGKILL.
 * Processes still running when the test process exits are killed by an exit hook.
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { atExit } from './exit.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const live = new Set<ChildProcess>();
atExit(() => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) try { c.kill('SIGKILL'); } catch { /* gone */ }
});

export interface StartOptions {
  /** Script to run with tsx and the tether-source condition, relative to the repository root or absolute. */
  script: string;
  port: number;
  env?: Record<string, string>;
  healthPath?: string;
  /** Wait until this many different X-Tether-Node names answered the health path (cluster workers). @default 1 */
  readyNodes?: number;
  readyTimeoutMs?: number;
  /**
   * A command that runs node for the app: its arguments come first, then node's (e.g. `unshare … sh -c
   * '… exec "$0" "$@"'`). It must exec node in place, so the PID stays the app's.
   */
  wrap?: readonly string[];
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From the stop signal to the exit. */
  elapsedMs: number;
}

export interface AppProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Everything the process wrote (stdout and stderr, the last 256 KiB). */
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit, SIGKILL after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** SIGKILL and wait. */
  kill(): Promise<Exit>;
}

/** GET `path` on a fresh connection; resolves with status and X-Tether-Node, rejects on connection errors. */
export function probe(port: number, urlPath = '/healthz', timeoutMs = 2_000): Promise<{ status: number; node: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, node: res.headers['x-tether-node'] as string | undefined, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** PID of worker `name` (from /healthz's body), asking on new connections until it answers (bounded). */
export async function pidOf(port: number, name: string, notPid = 0): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const r = await probe(port).catch(() => null);
    if (r?.status === 200 && r.node === name) {
      const pid = JSON.parse(r.body).pid as number;
      if (pid !== notPid) return pid;
    }
    await sleep(25);
  }
  throw new Error(`worker ${name} did not answer`);
}

/** Polls the health path until `readyNodes` distinct nodes answered 200, within `timeoutMs`. */
export async function waitHealthy(port: number, readyNodes = 1, timeoutMs = 30_000, healthPath = '/healthz', alive: () => boolean = () => true): Promise<void> {
  const seen = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (!alive()) throw new Error('the process exited before it was ready');
    try {
      const r = await probe(port, healthPath);
      if (r.status === 200) seen.add(r.node ?? 'unnamed');
      if (seen.size >= readyNodes) return;
      last = `status ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`port ${port} not healthy on ${readyNodes} node(s) within ${timeoutMs} ms (${last}; saw ${[...seen].join(', ') || 'none'})`);
}

export async function startApp(options: StartOptions): Promise<AppProcess> {
  const script = path.isAbsolute(options.script) ? options.script : path.join(REPO_ROOT, options.script);
  const nodeArgs = [process.execPath, '--conditions=tether-source', '--import', 'tsx', script];
  const [command, ...args] = [...(options.wrap ?? []), ...nodeArgs] as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_ENV: 'test', PORT: String(options.port), HOST: '127.0.0.1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  const collect = (c: Buffer): void => {
    out += c.toString('utf8');
    if (out.length > 256 * 1024) out = out.slice(-256 * 1024);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  try {
    await waitHealthy(options.port, options.readyNodes ?? 1, options.readyTimeoutMs ?? 30_000, options.healthPath, running);
  } catch (err) {
    if (running()) child.kill('SIGKILL');
    await exited;
    throw new Error(`${(err as Error).message}\n--- output ---\n${out.slice(-4000)}`, { cause: err });
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> => {
    const t0 = Date.now();
    if (running()) child.kill(signal);
    const timer = setTimeout(() => { if (running()) child.kill('SIGKILL'); }, timeoutMs);
    const r = await exited;
    clearTimeout(timer);
    return { ...r, elapsedMs: Date.now() - t0 };
  };
  return {
    url: `http://127.0.0.1:${options.port}`,
    port: options.port,
    pid: child.pid!,
    output: () => out,
    exited,
    stop,
    kill: () => stop('SIGKILL'),
  };
}
