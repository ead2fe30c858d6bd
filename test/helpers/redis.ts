/**
 * Starts throwaway redis-server processes for tests and benchmarks: one server, or a three-primary Cluster.
 *
 * `startRedis()` runs `redis-server` on 127.0.0.1 with a free port and its own temporary folder,
 * in the foreground (`--daemonize no`) so the PID we hold is the server's. The handle stops it
 * (SIGTERM), crashes it (`kill`, SIGKILL) and restarts it on the same port and folder, waiting for
 * PING each time. `dispose()` also removes the folder. Servers still running when this process exits
 * are killed and their folders removed by an exit hook (helpers/exit.ts: also on SIGINT, SIGTERM
 * and SIGHUP), so a failed or interrupted run leaves nothing behind. `startRedisCluster()` and
 * `startRedisSentinel()` build the other two topologies from the same pieces.
 * @module
 */
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { atExit, removeTempDir, tempDir } from './exit.js';

export interface StartRedisOptions {
  /** Append-only file: `true`/`'everysec'` → fsync once a second, `'always'` → fsync before every reply. @default false (no persistence at all) */
  appendonly?: boolean | 'always' | 'everysec';
  /** Working folder (AOF, RDB, nodes.conf, log). @default a fresh folder under os.tmpdir() */
  dir?: string;
  /** @default a free loopback port */
  port?: number;
  /** More `--name value` arguments, e.g. `['--maxmemory-policy', 'allkeys-lru']`. */
  extraArgs?: readonly string[];
  /** Bound on each wait for PING, in ms. @default 10_000 */
  readyTimeoutMs?: number;
}

export interface RedisServer {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** PID of the running server (changes on restart); 0 when stopped. */
  readonly pid: number;
  readonly dir: string;
  /** SIGTERM (no RDB save unless configured), SIGKILL after a bound. Keeps the folder for restart(). */
  stop(): Promise<void>;
  /** Crash: SIGKILL. Keeps the folder for restart(). */
  kill(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port and folder; resolves on PING. */
  restart(): Promise<void>;
  /** stop(), then removes the folder if this helper created it. */
  dispose(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_MS = 20;
const live = new Set<ChildProcess>();

atExit(() => {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
});

/** A free loopback port (the OS picks it; released just before the server binds it). */
import { freePort } from './net.js';
export { freePort };

/**
 * Sends one command to 127.0.0.1:`port` on a fresh connection and resolves with the reply as text
 * (simple string, integer or bulk string); an error reply or a timeout rejects. Enough for PING,
 * CLUSTER INFO, CONFIG SET and DEBUG commands without a client library.
 */
export function redisCommand(port: number, args: readonly (string | number)[], timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, value?: string): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => done(new Error(`redis on port ${port}: no reply within ${timeoutMs} ms`)), timeoutMs);
    sock.once('error', (err) => done(err));
    sock.on('connect', () => {
      let out = `*${args.length}\r\n`;
      for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
      sock.write(out);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(0, eol).toString();
      const kind = head[0];
      if (kind === '+' || kind === ':') return done(null, head.slice(1));
      if (kind === '-') return done(new Error(head.slice(1)));
      if (kind === '$') {
        const len = Number(head.slice(1));
        if (len < 0) return done(null, '');
        if (buf.length >= eol + 2 + len + 2) return done(null, buf.subarray(eol + 2, eol + 2 + len).toString());
        return;
      }
      done(new Error(`redis on port ${port}: unexpected reply ${JSON.stringify(head)}`));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true, at most `timeoutMs`; rejects with `what` otherwise. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await sleep(POLL_MS);
  }
  const reason = last instanceof Error ? String(last) : JSON.stringify(last);
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${reason}` : ''}`, { cause: last });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function appendArgs(appendonly: StartRedisOptions['appendonly']): string[] {
  if (!appendonly) return ['--appendonly', 'no', '--save', ''];
  const fsync = appendonly === 'always' ? 'always' : 'everysec';
  return ['--appendonly', 'yes', '--appendfsync', fsync, '--save', ''];
}

/** Starts one redis-server and resolves once it answers PING. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await tempDir('tether-redis-'));
  const port = options.port ?? (await freePort());
  const logFile = path.join(dir, 'redis.log');
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no',
    '--logfile', logFile, '--protected-mode', 'yes', ...appendArgs(options.appendonly),
    ...(options.extraArgs ?? []),
  ];
  return runServer(args, { port, dir, ownDir, logFile, readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS });
}

/**
 * Starts a Sentinel (`redis-server <conf> --sentinel`) watching the primary on `primaryPort` as
 * `name`, with quorum 1 and a 1 s down-after, so a failover starts about a second after the primary dies.
 */
export async function startRedisSentinel(primaryPort: number, name = 'mymaster', options: Pick<StartRedisOptions, 'readyTimeoutMs'> = {}): Promise<RedisServer> {
  const dir = await tempDir('tether-sentinel-');
  const port = await freePort();
  const logFile = path.join(dir, 'sentinel.log');
  const conf = path.join(dir, 'sentinel.conf');
  await writeFile(conf, [
    `port ${port}`, 'bind 127.0.0.1', 'daemonize no', `dir ${dir}`, `logfile ${logFile}`,
    `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 5000`,
    '',
  ].join('\n'));
  return runServer([conf, '--sentinel'], { port, dir, ownDir: true, logFile, readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS });
}

interface RunOptions { port: number; dir: string; ownDir: boolean; logFile: string; readyTimeoutMs: number }

/** Spawns redis-server with `args` and returns the handle once PING answers. */
async function runServer(args: string[], { port, dir, ownDir, logFile, readyTimeoutMs }: RunOptions): Promise<RedisServer> {
  let child: ChildProcess | null = null;

  const logTail = async (): Promise<string> => {
    try {
      return (await readFile(logFile, 'utf8')).split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const launch = async (): Promise<void> => {
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    child = proc;
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
    try {
      await Promise.race([
        waitFor(`redis-server on port ${port} to answer PING`, readyTimeoutMs, async () => {
          if (exited(proc)) throw new Error(`redis-server exited with ${proc.exitCode ?? proc.signalCode}`);
          return (await redisCommand(port, ['PING'], 500)) === 'PONG';
        }),
        spawnError.then((err) => { throw new Error(`cannot run redis-server (apt-get install -y redis-server): ${err.message}`); }),
      ]);
    } catch (err) {
      if (!exited(proc)) proc.kill('SIGKILL');
      await waitExit(proc, STOP_TIMEOUT_MS);
      child = null;
      throw new Error(`${(err as Error).message}\n--- redis.log ---\n${await logTail()}`, { cause: err });
    }
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc || exited(proc)) return;
    proc.kill(signal);
    if (!(await waitExit(proc, STOP_TIMEOUT_MS))) {
      proc.kill('SIGKILL');
      await waitExit(proc, STOP_TIMEOUT_MS);
    }
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      const proc = child;
      return proc && !exited(proc) ? proc.pid ?? 0 : 0;
    },
    dir,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    restart: async () => {
      await halt('SIGTERM');
      await launch();
    },
    dispose: async () => {
      await halt('SIGTERM');
      if (ownDir) await removeTempDir(dir);
    },
  };
}

export interface RedisCluster {
  /** The primaries, in the order they were created. */
  readonly nodes: readonly RedisServer[];
  /** `{ host, port }` of every primary: the seed list for `new Redis.Cluster(...)`. */
  readonly seeds: ReadonlyArray<{ host: string; port: number }>;
  /** Stops every node at once (folders kept). */
  stop(): Promise<void>;
  /** Stops every node and removes their folders. */
  dispose(): Promise<void>;
}

function redisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * Starts `primaries` (default 3) cluster-enabled servers, joins them with
 * `redis-cli --cluster create … --cluster-replicas 0`, and resolves once every node's CLUSTER INFO
 * says `cluster_state:ok`. On any failure every node started so far is killed.
 */
export async function startRedisCluster(primaries = 3, options: Pick<StartRedisOptions, 'readyTimeoutMs' | 'extraArgs'> = {}): Promise<RedisCluster> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < primaries; i++) {
      nodes.push(await startRedis({
        readyTimeoutMs,
        extraArgs: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '5000', ...(options.extraArgs ?? [])],
      }));
    }
    await redisCli(['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], readyTimeoutMs);
    for (const node of nodes) {
      await waitFor(`cluster_state:ok on port ${node.port}`, readyTimeoutMs,
        async () => (await redisCommand(node.port, ['CLUSTER', 'INFO'], 1_000)).includes('cluster_state:ok'));
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.dispose()));
    throw err;
  }
  return {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    stop: async () => { await Promise.all(nodes.map((n) => n.stop())); },
    dispose: async () => { await Promise.all(nodes.map((n) => n.dispose())); },
  };
}

/** True when `redis-server` is on PATH (for a clear failure message, never to skip silently). */
export function redisInstalled(): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => fs.existsSync(path.join(d, 'redis-server')));
}
