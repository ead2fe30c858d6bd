/**
 * Bytes per session: runs bench/lib/memory-probe.ts once per subject, each in a fresh process with
 * --expose-gc, and collects heap used after GC per session held.
 * @module
 */
import { execFile } from 'node:child_process';
import { ROOT } from './procs.js';
import { buildBench } from './build.js';
import { storeAvailable } from './stacks.js';
import { startRedis } from '../../test/helpers/redis.js';
import { round } from './stats.js';
import { seedData } from './workload.js';

export interface MemoryFigure {
  subject: string;
  label: string;
  bytesPerSession: number | null;
  sessions: number;
  error?: string;
  extra?: Record<string, number>;
}

export interface MemoryResults {
  count: number;
  dataBytes: number;
  subjects: MemoryFigure[];
}

const LABELS: Record<string, string> = {
  'tether-memory': 'Tether MemoryStore',
  'tether-tiered': 'Tether tiered store, local cache',
  'express-session-memory': 'express-session MemoryStore',
};

async function probe(subject: string, count: number, redisUrl?: string): Promise<Record<string, number>> {
  const { memoryProbe } = await buildBench();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', memoryProbe, subject, String(count), ...(redisUrl ? [redisUrl] : [])],
      { cwd: ROOT, timeout: 300_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${subject}: ${stderr.trim().split('\n').slice(-3).join(' ') || err.message}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number>);
        } catch {
          reject(new Error(`${subject}: unreadable output ${stdout.slice(0, 200)}`));
        }
      });
  });
}

export async function measureMemory(o: { count: number; log: (l: string) => void }): Promise<MemoryResults> {
  const subjects = ['express-session-memory', 'tether-memory', ...(storeAvailable('tiered') ? ['tether-tiered'] : [])];
  // Each probe is a process of its own that measures only its own heap, so they run side by side:
  // the run waits for the slowest (the tier, which writes every session through Redis), not the sum.
  const out = await Promise.all(subjects.map(async (subject): Promise<MemoryFigure> => {
    const redis = subject === 'tether-tiered' ? await startRedis() : undefined;
    try {
      const r = await probe(subject, o.count, redis?.url);
      const { bytesPerSession, sessions, subject: _s, ...extra } = r;
      return { subject, label: LABELS[subject]!, bytesPerSession: round(bytesPerSession!), sessions: sessions ?? o.count, extra };
    } catch (err) {
      return { subject, label: LABELS[subject]!, bytesPerSession: null, sessions: 0, error: (err as Error).message };
    } finally {
      await redis?.dispose();
    }
  }));
  for (const f of out) {
    o.log(f.bytesPerSession === null ? `  ${f.subject} failed: ${f.error}` : `  ${f.label.padEnd(36)} ${Math.round(f.bytesPerSession)} bytes/session`);
  }
  return { count: o.count, dataBytes: JSON.stringify(seedData(1)).length, subjects: out };
}
