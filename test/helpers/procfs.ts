/**
 * Process facts from Linux /proc, for tests that check what a process left running: its parent, its
 * command name and its state, read from /proc/<pid>/stat (the name sits in parentheses and may hold
 * spaces, so the fields after it are read from the last `)`).
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  /** The command name (at most 15 characters). */
  comm: string;
  /** R, S, D, Z (a zombie: exited, not yet reaped), … */
  state: string;
  ppid: number;
}

/** The process's stat, or null when there is no such process. */
export function procStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const [state, ppid] = stat.slice(close + 2).split(' ');
    return { comm: stat.slice(stat.indexOf('(') + 1, close), state: state!, ppid: Number(ppid) };
  } catch {
    return null;
  }
}

/** Whether the process exists and has not exited: a killed child whose parent is gone may stay a zombie until reaped. */
export function isRunning(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat.state !== 'Z';
}

/** PIDs whose parent is `pid`. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name) && procStat(Number(name))?.ppid === pid) out.push(Number(name));
  }
  return out;
}
