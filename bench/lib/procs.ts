/**
 * Child processes of a benchmark run: the server under test (one per stack), the load generator, and
 * the CPU and command counters read around each pass (process.cpuUsage over IPC, /proc/<pid>/stat for
 * redis-server, INFO commandstats).
 * @module
 */
import { fork, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { StackEnv } from '../stacks/context.js';
import type { RunRequest, RunResult } from './load.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Bound on waiting for a child's answer; a pass is seconds long, so a minute means something broke. */
const ANSWER_TIMEOUT_MS = 120_000;

class Channel {
  readonly #child: ChildProcess;
  #seq = 0;
  readonly #waiting = new Map<number, { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }>();

  constructor(child: ChildProcess, what: string) {
    this.#child = child;
    child.on('message', (m: Record<string, unknown>) => {
      const seq = m.seq as number | undefined;
      const w = seq === undefined ? this.#waiting.get(-1) : this.#waiting.get(seq);
      if (!w) return;
      this.#waiting.delete(seq ?? -1);
      if (m.type === 'error' || m.type === 'failed') w.reject(new Error(`${what}: ${String(m.error)}`));
      else w.resolve(m);
    });
    child.on('exit', (code) => {
      for (const w of this.#waiting.values()) w.reject(new Error(`${what} exited (${code})`));
      this.#waiting.clear();
    });
  }

  /** Sends `msg` with a fresh seq (or none, for the one unsequenced answer, 'ready') and waits. */
  ask(msg: Record<string, unknown>, sequenced = true): Promise<Record<string, unknown>> {
    const seq = sequenced ? ++this.#seq : -1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(seq);
        reject(new Error(`no answer to ${String(msg.type)} within ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      const done = { resolve: (m: Record<string, unknown>) => { clearTimeout(timer); resolve(m); }, reject: (e: Error) => { clearTimeout(timer); reject(e); } };
      this.#waiting.set(seq, done);
      this.#child.send(sequenced ? { ...msg, seq } : msg);
    });
  }
}

export interface CpuSample {
  /** Microseconds of CPU (user + system) since the process started. */
  cpuUs: number;
  /** Of which in the kernel (system calls: socket reads and writes, wake-ups). */
  systemUs: number;
  handled: number;
}

/**
 * Node flags of the servers under test: what BENCH_SERVER_NODE_ARGS names (e.g. --perf-basic-prof for
 * `perf record`), none by default. Runs record them (bench/analysis.md item 37 measured one that was not kept).
 */
export function serverNodeArgs(): string[] {
  return process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
}

export class ServerProcess {
  readonly child: ChildProcess;
  readonly #ch: Channel;
  port = 0;

  /** `script`: the compiled server (bench/lib/build.ts), run by plain node with serverNodeArgs(). */
  constructor(readonly stack: string, script: string) {
    this.child = fork(script, [], { cwd: ROOT, execArgv: serverNodeArgs(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#ch = new Channel(this.child, `server ${stack}`);
  }

  async start(env: StackEnv): Promise<void> {
    const m = await this.#ch.ask({ type: 'init', stack: this.stack, env }, false);
    this.port = m.port as number;
  }

  /** A full, compacting collection in the server, when it runs with --expose-gc; false otherwise. */
  async collect(): Promise<boolean> {
    return (await this.#ch.ask({ type: 'gc' })).collected as boolean;
  }

  async cpu(): Promise<CpuSample> {
    const m = await this.#ch.ask({ type: 'cpu' });
    return { cpuUs: (m.user as number) + (m.system as number), systemUs: m.system as number, handled: m.handled as number };
  }

  /** Starts the V8 CPU profiler in the server (the same profiler as --cpu-prof, over one pass only). */
  async profileStart(): Promise<void> {
    await this.#ch.ask({ type: 'profile', action: 'start' });
  }

  /** Stops it and writes the .cpuprofile to `file`. */
  async profileStop(file: string): Promise<void> {
    await this.#ch.ask({ type: 'profile', action: 'stop', file });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'close' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

export class LoadProcess {
  readonly child: ChildProcess;
  readonly #ch: Channel;

  /** `script`: the compiled load generator (bench/lib/build.ts). */
  constructor(script: string) {
    this.child = fork(script, [], { cwd: ROOT, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#ch = new Channel(this.child, 'load generator');
  }

  async run(req: Omit<RunRequest, 'type' | 'seq'>): Promise<RunResult> {
    return (await this.#ch.ask({ type: 'run', ...req })) as unknown as RunResult;
  }

  close(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

let clockTicks = 0;

/** CPU time (user + system) of any process by PID, from /proc, in microseconds. */
export function procCpuUs(pid: number): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at "state" (field 3).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / clockTicks;
}

export interface RedisStats {
  /** Calls per command name (INFO commandstats), INFO itself left out. Counts commands run inside Lua scripts too. */
  commands: Record<string, number>;
  /**
   * The server's CPU time in µs (INFO cpu: used_cpu_user + used_cpu_sys, from getrusage, to the
   * microsecond), or null when absent. Finer than /proc's clock ticks (10 ms), which a short pass on a
   * starved machine may not advance at all.
   */
  cpuUs: number | null;
}

/** Parses the commandstats and cpu sections of `INFO all`. */
export function redisStats(info: string): RedisStats {
  const commands: Record<string, number> = {};
  let user: number | null = null;
  let sys: number | null = null;
  for (const raw of info.split('\n')) {
    const line = raw.trim();
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m && m[1] !== 'info') commands[m[1]!] = Number(m[2]);
    else if (line.startsWith('used_cpu_user:')) user = Number(line.slice('used_cpu_user:'.length));
    else if (line.startsWith('used_cpu_sys:')) sys = Number(line.slice('used_cpu_sys:'.length));
  }
  return { commands, cpuUs: user !== null && sys !== null ? Math.round((user + sys) * 1e6) : null };
}

/** Per-command calls between two readings. */
export function commandDelta(a: RedisStats, b: RedisStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.commands)) {
    const d = v - (a.commands[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}
