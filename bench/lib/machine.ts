/**
 * What a result was measured on: CPU model and cores, memory, OS, Node, and the versions of every
 * package and server a benchmark touches, read from the installed files (never typed in).
 * @module
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT } from './procs.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  load: number[];
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    load: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function redisVersion(): string {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

export function versions(packages: readonly string[], withRedis = false): Record<string, string> {
  const out: Record<string, string> = { tether: pkgVersion('../'), node: process.version };
  for (const p of packages) out[p] = pkgVersion(p);
  if (withRedis) out['redis-server'] = redisVersion();
  return out;
}
