/**
 * Starts a throwaway HAProxy (the Debian package) on 127.0.0.1 with a given configuration: its own
 * temporary folder, in the foreground (`-db`) so the PID we hold is HAProxy's, stopped by PID. Reads the
 * state of each server from the stats page's CSV export.
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { atExit } from './exit.js';

const live = new Set<ChildProcess>();
atExit(() => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) try { c.kill('SIGKILL'); } catch { /* gone */ }
});

export interface HaproxyOptions {
  /** The whole haproxy.cfg. */
  config: string;
  /** The frontend port, waited for. */
  port: number;
  /** The stats page port (the config must bind it), for serverStates(). */
  statsPort?: number;
}

export interface Haproxy {
  readonly pid: number;
  readonly url: string;
  output(): string;
  /** svname → status ('UP', 'DOWN', 'UP 1/2', 'NOLB', 'MAINT', …) for the servers of `backend`. */
  serverStates(backend?: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export function haproxyInstalled(): boolean {
  return spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).status === 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function get(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('stats timed out')));
    req.on('error', reject);
  });
}

export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-haproxy-'));
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, options.config);
  const check = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  if (check.error) throw new Error(`haproxy is not installed or not on PATH (Debian: apt-get install haproxy, or node scripts/system-packages.mjs as root): ${check.error.message}`);
  if (check.status !== 0) throw new Error(`haproxy -c rejected the configuration:\n${check.stdout}${check.stderr}`);
  const child = spawn('haproxy', ['-f', file, '-db'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  const collect = (c: Buffer): void => {
    out += c.toString('utf8');
    if (out.length > 512 * 1024) out = out.slice(-512 * 1024);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => { live.delete(child); resolve(); }));
  for (let i = 0; i < 200 && !(await accepts(options.port)); i++) {
    if (child.exitCode !== null) break;
    await sleep(25);
  }
  if (!(await accepts(options.port))) {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw new Error(`haproxy did not listen on ${options.port}:\n${out.slice(-2000)}`);
  }
  return {
    pid: child.pid!,
    url: `http://127.0.0.1:${options.port}`,
    output: () => out,
    async serverStates(backend = 'tether_nodes') {
      if (options.statsPort === undefined) throw new Error('no stats port configured');
      const csv = await get(options.statsPort, '/;csv');
      const lines = csv.split('\n');
      const header = lines[0]!.replace(/^# /, '').split(',');
      const px = header.indexOf('pxname');
      const sv = header.indexOf('svname');
      const st = header.indexOf('status');
      const states: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const f = line.split(',');
        if (f[px] === backend && f[sv] !== 'BACKEND' && f[sv] !== 'FRONTEND' && f[sv]) states[f[sv]] = f[st]!;
      }
      return states;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
