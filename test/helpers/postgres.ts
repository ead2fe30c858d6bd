/**
 * Starts a throwaway PostgreSQL server for tests and benchmarks: its own data folder, a free loopback port, trust auth.
 *
 * `startPostgres()` runs initdb into a fresh temporary folder and the postmaster on 127.0.0.1. As root
 * (PostgreSQL refuses to run as root) both run as the `postgres` system user through spawn's uid/gid.
 * The handle stops, crashes (`kill`, SIGKILL to the postmaster and its children) and restarts the server
 * on the same port and data folder; `dispose()` also removes the folder. Servers still running when the
 * process exits are shut down and their folders removed by an exit hook, and, should this process be
 * killed outright (a test runner's timeout), by a small watchdog shell that outlives it for that purpose.
 * @module
 */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { atExit } from './exit.js';
import { childPids } from './procfs.js';

export interface StartPostgresOptions {
  /** fsync=off, synchronous_commit=off, full_page_writes=off: for tests that do not test durability. @default false */
  fast?: boolean;
  /** Database created at start and named in `url`. @default 'tether' */
  database?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** Bound on each wait for readiness, in ms. @default 20_000 */
  readyTimeoutMs?: number;
  /**
   * A streaming-replication standby of this server: copied with pg_basebackup (-R, WAL streamed) instead
   * of initdb, read-only until `promote()`. The database is the primary's.
   */
  standbyOf?: PostgresServer;
}

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  readonly url: string;
  readonly port: number;
  /** PID of the running postmaster (changes on restart); 0 when stopped. */
  readonly pid: number;
  readonly dataDir: string;
  /** Fast shutdown (SIGINT, like `pg_ctl stop -m fast`), SIGKILL after a bound. Keeps the data for restart(). */
  stop(): Promise<void>;
  /** Crash: SIGKILL to the postmaster and its children at once. Keeps the data for restart(). */
  kill(): Promise<void>;
  /** SIGSTOP to the postmaster and its children: the server hangs (connections open, nothing answers). */
  pause(): void;
  /** SIGCONT to the processes `pause()` stopped. */
  resume(): void;
  /** Stops the server if it runs, then starts it again on the same port and data folder; resolves when ready. */
  restart(): Promise<void>;
  /** A standby (`standbyOf`) becomes a primary that takes writes (pg_promote); resolves once it does. */
  promote(): Promise<void>;
  /** stop(), then removes the temporary folder. */
  dispose(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const live = new Map<number, { root: string; proc: () => ChildProcess | null; watchdog: () => ChildProcess | null }>();
let nextId = 0;

atExit(() => {
  for (const { root, proc, watchdog } of live.values()) {
    const w = watchdog()?.pid;
    if (w !== undefined) {
      try { process.kill(w, 'SIGKILL'); } catch { /* already gone */ }
    }
    const p = proc();
    if (p?.pid !== undefined && p.exitCode === null && p.signalCode === null) {
      try { process.kill(p.pid, 'SIGQUIT'); } catch { /* already gone */ }
    }
    try { fs.rmSync(root, { recursive: true, force: true }); } catch { /* best effort at exit */ }
  }
});

/** The newest installed /usr/lib/postgresql/<version>/bin that has initdb. */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb); apt-get install -y postgresql');
  return path.join(base, versions[0]!, 'bin');
}

/** Who runs the server: ourselves, or the `postgres` user (created if missing) when we are root. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = (): { uid: number; gid: number } | null => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      return null;
    }
  };
  const found = lookup();
  if (found) return found;
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
  const created = lookup();
  if (!created) throw new Error('could not create the postgres system user');
  return created;
}

/** A base folder every ancestor of which the server user can traverse. */
function traversableTmp(): string {
  const ok = (dir: string): boolean => {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      if ((fs.statSync(d).mode & 0o001) === 0) return false;
      if (d === path.dirname(d)) return true;
    }
  };
  for (const dir of [os.tmpdir(), '/tmp']) if (ok(dir)) return dir;
  throw new Error(`neither ${os.tmpdir()} nor /tmp is traversable by other users; PostgreSQL runs as the postgres user`);
}

/** A free loopback port (the OS picks it; released just before the server binds it). */
import { freePort } from './net.js';
export { freePort };

/**
 * Polls (1 s) whether `parent` is alive; when it is gone, shuts the postmaster down (waking it and its
 * children first, in case they were paused), SIGKILLs what is left after 5 s and removes the folder.
 */
const WATCHDOG_SCRIPT = `parent=$1; pm=$2; root=$3
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
kids=$(pgrep -P "$pm")
kill -CONT "$pm" $kids 2>/dev/null
kill -QUIT "$pm" 2>/dev/null
i=0; while kill -0 "$pm" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$pm" $kids 2>/dev/null
rm -rf "$root"`;

function startWatchdog(postmasterPid: number, root: string): ChildProcess {
  const child = spawn('sh', ['-c', WATCHDOG_SCRIPT, 'tether-pg-watchdog', String(process.pid), String(postmasterPid), root],
    { stdio: 'ignore', detached: true });
  child.once('error', () => {});
  child.unref();
  return child;
}

function run(cmd: string, args: string[], user: { uid: number; gid: number } | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}), env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} exited with ${code}: ${out.slice(-2000)}`))));
  });
}

/** Polls `SELECT 1` until it succeeds, the server exits, or the bound passes. */
async function waitReady(url: string, proc: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let attempt = 0; attempt < 10_000 && Date.now() < deadline; attempt++) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`postgres exited during startup (${proc.exitCode ?? proc.signalCode}): ${tail(logFile)}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      last = err;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`postgres not ready within ${timeoutMs} ms (${String(last)}): ${tail(logFile)}`);
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-2000);
  } catch {
    return '(no log)';
  }
}

function exited(proc: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function identifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain identifier: ${name}`);
  return `"${name}"`;
}

/** Runs one query on a connection of its own to `url`; resolves with its rows. */
export async function pgQuery<R extends object>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates database `name` on the server behind `url`; returns the URL naming it. */
export async function createDatabase(url: string, name: string): Promise<string> {
  await pgQuery(url, `CREATE DATABASE ${identifier(name)}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const user = serverUser();
  const database = options.database ?? 'tether';
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const root = await mkdtemp(path.join(user ? traversableTmp() : os.tmpdir(), 'tether-pg-'));
  const id = ++nextId;
  let proc: ChildProcess | null = null;
  let watchdog: ChildProcess | null = null;
  live.set(id, { root, proc: () => proc, watchdog: () => watchdog });
  const dataDir = path.join(root, 'data');
  const socketDir = path.join(root, 'sock');
  const logFile = path.join(root, 'postgres.log');
  fs.mkdirSync(socketDir);
  if (user) {
    fs.chownSync(root, user.uid, user.gid);
    fs.chownSync(socketDir, user.uid, user.gid);
  }
  if (options.standbyOf) {
    // initdb's pg_hba.conf lets 127.0.0.1 replicate under trust; -R writes primary_conninfo and standby.signal.
    await run(path.join(bin, 'pg_basebackup'), ['-D', dataDir, '-h', '127.0.0.1', '-p', String(options.standbyOf.port), '-U', 'postgres', '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync'], user);
  } else {
    // --no-sync only skips initdb's own flush of the template files; the server's fsync setting is separate.
    await run(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions'], user);
  }

  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    max_connections: 100,
    shared_buffers: '32MB',
    ...(options.fast ? { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } : {}),
    ...options.settings,
  };
  let port = 0;
  const url = (): string => `postgres://postgres@127.0.0.1:${port}/${database}`;

  let paused: number[] = [];
  const signalAll = (pids: number[], signal: NodeJS.Signals): void => {
    for (const pid of pids) {
      try { process.kill(pid, signal); } catch { /* already gone */ }
    }
  };

  const launch = async (): Promise<void> => {
    const log = fs.openSync(logFile, 'a');
    const args = ['-D', dataDir, '-p', String(port)];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
    try {
      proc = spawn(path.join(bin, 'postgres'), args, { stdio: ['ignore', log, log], ...(user ?? {}) });
    } finally {
      fs.closeSync(log);
    }
    proc.once('error', () => {});
    proc.unref();
    if (proc.pid !== undefined) watchdog = startWatchdog(proc.pid, root);
    await waitReady(`postgres://postgres@127.0.0.1:${port}/postgres`, proc, logFile, readyTimeoutMs);
  };

  /** Startup with retries: the port can be taken between probing and binding, and a crashed server's children may linger briefly. */
  const launchRetrying = async (pickPort: boolean): Promise<void> => {
    let last: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      if (pickPort) port = await freePort();
      try {
        await launch();
        return;
      } catch (err) {
        last = err;
        if (proc) await halt('SIGKILL');
        if (!/could not bind|could not create any TCP|shared memory block is still in use|lock file .* already exists/i.test(String(err))) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw last;
  };

  const halt = async (signal: 'SIGINT' | 'SIGKILL'): Promise<void> => {
    // A paused server cannot shut down; let it run again first.
    signalAll(paused, 'SIGCONT');
    paused = [];
    if (watchdog?.pid !== undefined) signalAll([watchdog.pid], 'SIGKILL');
    watchdog = null;
    const p = proc;
    if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
    const pid = p.pid;
    const kids = signal === 'SIGKILL' ? childPids(pid) : [];
    try { process.kill(pid, signal); } catch { /* already gone */ }
    for (const kid of kids) {
      try { process.kill(kid, 'SIGKILL'); } catch { /* already gone */ }
    }
    if (!(await exited(p, STOP_TIMEOUT_MS)) && signal !== 'SIGKILL') {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      await exited(p, STOP_TIMEOUT_MS);
    }
  };

  try {
    await launchRetrying(true);
    if (database !== 'postgres' && !options.standbyOf) await createDatabase(`postgres://postgres@127.0.0.1:${port}/postgres`, database);
  } catch (err) {
    await halt('SIGKILL');
    live.delete(id);
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }

  return {
    get url() { return url(); },
    get port() { return port; },
    get pid() {
      const p = proc;
      return p?.pid !== undefined && p.exitCode === null && p.signalCode === null ? p.pid : 0;
    },
    dataDir,
    pause: () => {
      const pid = proc?.pid;
      if (!pid) return;
      paused = [pid, ...childPids(pid)];
      signalAll(paused, 'SIGSTOP');
    },
    resume: () => {
      signalAll(paused, 'SIGCONT');
      paused = [];
    },
    stop: () => halt('SIGINT'),
    kill: () => halt('SIGKILL'),
    restart: async () => {
      await halt('SIGINT');
      await launchRetrying(false);
    },
    promote: async () => {
      const [row] = await pgQuery<{ promoted: boolean }>(url(), 'SELECT pg_promote(true, 30) AS promoted');
      if (row?.promoted !== true) throw new Error(`the standby was not promoted within 30 s: ${tail(logFile)}`);
    },
    dispose: async () => {
      await halt('SIGINT');
      live.delete(id);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
